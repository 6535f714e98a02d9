package main

import (
	"bytes"
	"log/slog"
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
