package board

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Volumes watches for USB sticks.
type Volumes interface {
	// Next blocks until a stick is newly mounted and writable and returns its mount point,
	// or until ctx ends (then ctx.Err()).
	Next(ctx context.Context) (string, error)
	// Mounted lists the writable sticks mounted now (for an export button press).
	Mounted() ([]string, error)
}

// VolumeOptions configures GlobVolumes.
type VolumeOptions struct {
	// Globs are filepath.Match patterns of mount points. Default /media/*/* and /media/*.
	Globs []string
	// Interval between two looks. Default 1 s.
	Interval time.Duration
	// RequireMount: only directories that are mount points (on another device than their
	// parent) count, so the empty /media/usb0 of usbmount or /media/<user> are skipped.
	// Open sets it; tests on a temp dir leave it off.
	RequireMount bool
}

// GlobVolumes polls the globs (no inotify: simple and the same on every kernel and in tests).
// A directory is reported when it matches, is writable (and a mount point when required), and
// was not so at the previous look: present at construction does not count as inserted.
type GlobVolumes struct {
	opts VolumeOptions

	mu   sync.Mutex          // held by Next for its whole wait
	seen map[string]struct{} // usable at the last look; guarded by mu
	new  []string            // found, not yet returned by Next; guarded by mu
}

// NewGlobVolumes takes the first look now.
func NewGlobVolumes(opts VolumeOptions) (*GlobVolumes, error) {
	if len(opts.Globs) == 0 {
		opts.Globs = []string{"/media/*/*", "/media/*"}
	}
	for _, g := range opts.Globs {
		if _, err := filepath.Match(g, ""); err != nil {
			return nil, fmt.Errorf("board: mount glob %q: %w", g, err)
		}
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	v := &GlobVolumes{opts: opts}
	v.seen = v.look()
	return v, nil
}

// look returns the usable directories now.
func (v *GlobVolumes) look() map[string]struct{} {
	found := map[string]struct{}{}
	for _, g := range v.opts.Globs {
		matches, _ := filepath.Glob(g) // the pattern was checked in NewGlobVolumes
		for _, m := range matches {
			if v.usable(m) {
				found[m] = struct{}{}
			}
		}
	}
	return found
}

func (v *GlobVolumes) usable(dir string) bool {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return false
	}
	// A read-only stick is usable too: exporting to it fails with a clear error on the
	// status page and the LED (ignoring it would leave the person waiting).
	return !v.opts.RequireMount || isMountPoint(dir, st)
}

// Next implements Volumes.
func (v *GlobVolumes) Next(ctx context.Context) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t := time.NewTicker(v.opts.Interval)
	defer t.Stop()
	for len(v.new) == 0 {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
		now := v.look()
		for dir := range now {
			if _, ok := v.seen[dir]; !ok {
				v.new = append(v.new, dir)
			}
		}
		slices.Sort(v.new)
		v.seen = now
	}
	dir := v.new[0]
	v.new = v.new[1:]
	return dir, nil
}

// Mounted implements Volumes.
func (v *GlobVolumes) Mounted() ([]string, error) {
	var dirs []string
	for dir := range v.look() {
		dirs = append(dirs, dir)
	}
	slices.Sort(dirs)
	return dirs, nil
}

// Globs are the patterns watched.
func (v *GlobVolumes) Globs() []string { return slices.Clone(v.opts.Globs) }
