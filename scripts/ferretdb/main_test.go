package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// A record logged through lazyAttrs reads as it would through the text
// handler itself: the same attributes, in the same groups and order.
func TestLazyAttrsLogsWhatTheHandlerWould(t *testing.T) {
	var lazy, eager bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelWarn}
	for _, c := range []struct {
		buf *bytes.Buffer
		h   slog.Handler
	}{
		{&lazy, lazyAttrs{h: slog.NewTextHandler(&lazy, opts)}},
		{&eager, slog.NewTextHandler(&eager, opts)},
	} {
		l := slog.New(c.h).With("query", "UPDATE t", "args", []any{1, "x"})
		l = l.WithGroup("conn").With("peer", "127.0.0.1")
		l.Info("dropped: below the level")
		l.Warn("slow", "ms", 12)
	}
	time := regexp.MustCompile(`time=\S+ `)
	got, want := time.ReplaceAllString(lazy.String(), ""), time.ReplaceAllString(eager.String(), "")
	if got != want || want == "" {
		t.Fatalf("lazy handler wrote\n%q\nthe text handler\n%q", got, want)
	}
}

// A derived logger that is never used formats nothing.
func TestLazyAttrsDefersFormatting(t *testing.T) {
	var buf bytes.Buffer
	h := lazyAttrs{h: slog.NewTextHandler(&buf, nil)}
	d := h.WithAttrs([]slog.Attr{slog.String("a", "1")}).WithGroup("g")
	if n := len(d.(lazyAttrs).ops); n != 2 {
		t.Fatalf("kept %d operations, want 2", n)
	}
	if len(h.ops) != 0 || buf.Len() != 0 {
		t.Fatalf("the parent changed or something was written: %d ops, %q", len(h.ops), buf.String())
	}
}

// A database dropped and made again is a new file under the old name: it
// gets the index too, not only the file the first pass saw.
func TestIndexersIndexADatabaseMadeAgain(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "d.sqlite")
	create := func() {
		db, err := sql.Open("sqlite", "file:"+file)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range []string{
			`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT, settings TEXT)`,
			`INSERT INTO _ferretdb_collections VALUES ('c', 'c_1', '{}')`,
			`CREATE TABLE c_1 (_ferretdb_sjson TEXT)`,
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	}
	indexed := func() bool {
		db, err := sql.Open("sqlite", "file:"+file+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		q := `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'c_1__id_path'`
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	dbs := indexers{}
	defer dbs.close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()

	create()
	dbs.pass(ctx, logger, dir)
	if !indexed() {
		t.Fatal("the first file was not indexed")
	}
	for _, f := range []string{file, file + "-wal", file + "-shm"} {
		_ = os.Remove(f) // the drop
	}
	dbs.pass(ctx, logger, dir) // the file is gone: its handle is let go
	if len(dbs) != 0 {
		t.Fatalf("kept %d handles on deleted files", len(dbs))
	}
	create()
	dbs.pass(ctx, logger, dir)
	if !indexed() {
		t.Fatal("the database made again was not indexed")
	}
}
