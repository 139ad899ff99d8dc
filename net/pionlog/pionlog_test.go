package pionlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestFactory: pion's lines reach the slog logger with their scope; Info is Debug, and
// Quiet moves warnings to Debug and errors to Warn.
func TestFactory(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := New(log).NewLogger("ice")
	l.Infof("gathered %d", 3)
	l.Warn("odd packet")
	l.Errorf("failed: %s", "x")
	q := Factory{Logger: log, Quiet: true}.NewLogger("mdns")
	q.Warn("malformed")
	q.Error("send failed")
	want := []string{
		`level=DEBUG msg="gathered 3" pion=ice`,
		`level=WARN msg="odd packet" pion=ice`,
		`level=ERROR msg="failed: x" pion=ice`,
		`level=DEBUG msg=malformed pion=mdns`,
		`level=WARN msg="send failed" pion=mdns`,
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
}
