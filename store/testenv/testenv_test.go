package testenv

import (
	"sync/atomic"
	"testing"
)

// TestWaitFor: WaitFor returns once the condition holds, after polling it again.
func TestWaitFor(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, "three polls", func() bool { return n.Add(1) >= 3 })
	if n.Load() != 3 {
		t.Fatalf("polled %d times, want 3", n.Load())
	}
}
