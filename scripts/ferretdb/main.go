// Command xinfang-ferretdb runs FerretDB's embeddable server with its SQLite
// backend, so the local stack has a MongoDB-protocol store without Docker.
//
// `go install` of FerretDB's own command panics at start-up (its generated
// version file is not part of the module), hence this small wrapper around the
// supported embedding API. The embedding API disables telemetry itself.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27018", "TCP address to listen on")
	dataDir := flag.String("data", "./ferretdb-data", "directory for the SQLite database files")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	// WAL with synchronous=NORMAL: a commit no longer waits for fsync (a power
	// cut can lose the last commits, never corrupt the file). FerretDB's own
	// default (FULL) fsyncs every write: ~10 ms per update on this kind of disk.
	sqlitePragmas := flag.String("sqlite-params", "_pragma=synchronous(normal)",
		"extra SQLite URI query parameters")
	pprofAddr := flag.String("pprof", "",
		"if set, serve Go's profiles (net/http/pprof) on this address: where the server's CPU goes")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "bad -log-level: %v\n", err)
		os.Exit(2)
	}
	// FerretDB derives a logger with the SQL text and its arguments (whole
	// documents) for every statement it runs; slog's text handler formats
	// those at once, logged or not, and that was 8% of the server's CPU here
	logger := slog.New(lazyAttrs{h: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})})
	// GC at 4x the live heap instead of 2x (unless GOGC says otherwise):
	// collection was another 8% of the server's CPU, for a heap of tens of MB
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}

	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		logger.Error("data dir", "err", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		logger.Error("data dir", "err", err)
		os.Exit(1)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/?" + *sqlitePragmas,
	})
	if err != nil {
		logger.Error("start", "err", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	go indexIDPaths(ctx, logger, abs)
	if *pprofAddr != "" {
		go func() { logger.Error("pprof", "err", http.ListenAndServe(*pprofAddr, nil)) }()
	}

	logger.Warn("ferretdb listening", "uri", f.MongoDBURI(), "data", abs)
	if err := f.Run(ctx); err != nil {
		logger.Error("run", "err", err)
		os.Exit(1)
	}
}

// indexIDPaths gives every collection table an index on the exact expression
// FerretDB 1.24's SQLite backend filters `_id` with (`_ferretdb_sjson->'$._id'`).
// FerretDB's own unique index is on `_ferretdb_sjson->"_id"`, which SQLite does
// not match to that expression, so without this every find or update by _id
// scans the whole table (measured: 11 ms per update at 5,000 documents,
// growing linearly). The index lives in the SQLite files only; FerretDB's
// metadata does not list it, and DROP TABLE removes it with the collection.
func indexIDPaths(ctx context.Context, logger *slog.Logger, dir string) {
	dbs := indexers{}
	defer dbs.close()

	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()

	for {
		dbs.pass(ctx, logger, dir)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// indexers holds an open handle on each database file, and the file it was
// opened on. A dropped database's file is deleted and, when the database is
// made again, a new file takes its name: a handle kept by name alone would
// go on reading the deleted file, find its tables indexed, and leave the new
// ones without the index (a drop and remake ran its writes 20 times slower).
type indexers map[string]indexer

type indexer struct {
	db   *sql.DB
	file os.FileInfo
}

// pass indexes what every database file of dir lacks.
func (dbs indexers) pass(ctx context.Context, logger *slog.Logger, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	seen := map[string]bool{}
	for _, file := range files {
		info, err := os.Stat(file)
		if err != nil {
			continue // dropped meanwhile
		}
		seen[file] = true
		x, ok := dbs[file]
		if ok && !os.SameFile(x.file, info) {
			_ = x.db.Close()
			ok = false
		}
		if !ok {
			db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
			if err != nil {
				logger.Error("open for indexing", "file", file, "err", err)
				continue
			}
			db.SetMaxOpenConns(1)
			x = indexer{db: db, file: info}
			dbs[file] = x
		}
		if err := indexDB(ctx, x.db); err != nil {
			logger.Debug("indexing", "file", file, "err", err)
		}
	}
	for file, x := range dbs {
		if !seen[file] {
			_ = x.db.Close()
			delete(dbs, file)
		}
	}
}

func (dbs indexers) close() {
	for _, x := range dbs {
		_ = x.db.Close()
	}
}

func indexDB(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT t.table_name FROM _ferretdb_collections t
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_master m
			WHERE m.type = 'index' AND m.name = t.table_name || '__id_path')`)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			_ = rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	_ = rows.Close()

	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+"__id_path", t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// lazyAttrs is a slog.Handler that keeps what WithAttrs and WithGroup add and
// hands it to the handler below only when a record is handled, so a derived
// logger that never logs costs an append, not the formatting of its attributes.
type lazyAttrs struct {
	h   slog.Handler
	ops []lazyOp // in order: attributes, or a group the later ones go in
}

type lazyOp struct {
	group string
	attrs []slog.Attr
}

func (l lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	h := l.h
	for _, op := range l.ops {
		if op.attrs == nil {
			h = h.WithGroup(op.group)
		} else {
			h = h.WithAttrs(op.attrs)
		}
	}
	return h.Handle(ctx, r)
}

func (l lazyAttrs) with(op lazyOp) lazyAttrs {
	ops := make([]lazyOp, len(l.ops), len(l.ops)+1)
	copy(ops, l.ops)
	return lazyAttrs{h: l.h, ops: append(ops, op)}
}

func (l lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return l
	}
	return l.with(lazyOp{attrs: attrs})
}

func (l lazyAttrs) WithGroup(name string) slog.Handler {
	if name == "" {
		return l
	}
	return l.with(lazyOp{group: name})
}
