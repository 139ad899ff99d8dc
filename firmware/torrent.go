package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/chattorrent/chattorrent/net/torrent"
)

// torrentCmd runs "chattorrent torrent inspect FILE".
func torrentCmd(args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "inspect" {
		return usageError{err: errors.New("usage: chattorrent torrent inspect FILE")}
	}
	b, err := readLimited(args[1], torrent.MaxSize)
	if err != nil {
		return err
	}
	out, err := torrent.Inspect(b)
	if err != nil {
		return fmt.Errorf("%s: %w", args[1], err)
	}
	if _, err := stdout.Write(out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// readLimited reads at most max+1 bytes of the file, so that an oversized file is
// recognized (by the decoder) without reading all of it.
func readLimited(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}
