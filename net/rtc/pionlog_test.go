package rtc

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer pion's goroutines may log into.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPionLogsThroughSlog: the log lines of pion's own objects (ICE, DTLS, SCTP, the
// peer connection) reach Options.Logger with their scope, not pion's stderr logger.
func TestPionLogsThroughSlog(t *testing.T) {
	var buf lockedBuffer
	oa, ob := vnetOptions(t)
	oa.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	connect(t, oa, ob)
	if out := buf.String(); !strings.Contains(out, "pion=ice") {
		t.Fatalf("no line of pion's ICE agent in the slog logger:\n%s", out)
	}
}
