package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/chattorrent/chattorrent/net/archiver"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/bundle"
	"github.com/chattorrent/chattorrent/web"
)

// boxAPI adapts the archiver and the store to web.Box.
type boxAPI struct {
	arch  *archiver.Archiver
	store *store.Store
	blobs *blobs.Store
}

func (b boxAPI) Connect(ctx context.Context, offer []byte) ([]byte, error) {
	answer, err := b.arch.ConnectFrom(ctx, offer, archiver.Caller{Addr: web.ClientAddr(ctx), Proven: web.ProvenAuthors(ctx)})
	switch {
	case errors.Is(err, archiver.ErrNotOffer):
		return nil, web.ErrNotOffer
	case errors.Is(err, archiver.ErrBadOffer):
		return nil, fmt.Errorf("%w: %w", web.ErrBadSDP, err)
	case errors.Is(err, archiver.ErrTooMany):
		return nil, web.ErrTooMany
	case errors.Is(err, archiver.ErrBusy):
		return nil, web.ErrBoxBusy
	case errors.Is(err, store.ErrStoreFull), errors.Is(err, store.ErrRoomsFull):
		return nil, fmt.Errorf("%w: %w", web.ErrStoreFull, err)
	}
	return answer, err
}

func (b boxAPI) Rooms() ([]web.BoxRoom, error) {
	rooms, err := b.store.Rooms()
	if err != nil {
		return nil, err
	}
	out := make([]web.BoxRoom, 0, len(rooms))
	for _, r := range rooms {
		out = append(out, web.BoxRoom{ID: r.ID, Name: r.Name, Entries: r.Entries, LastTS: r.LastTS})
	}
	return out, nil
}

// ExportZip streams the room's zip (bundle.WriteStream) from a snapshot of its history
// taken now (store.HistoryStream).
func (b boxAPI) ExportZip(room string) (string, func(io.Writer) error, error) {
	h, err := b.stream(room)
	if err != nil {
		return "", nil, err
	}
	var files bundle.Files
	if b.blobs != nil {
		files = b.blobs
	}
	return h.Room().Name, func(w io.Writer) error { return bundle.WriteStream(w, h, files, time.Now()) }, nil
}

// Export streams the room's history.json from a snapshot of its history taken now.
func (b boxAPI) Export(room string) (string, func(io.Writer) error, error) {
	h, err := b.stream(room)
	if err != nil {
		return "", nil, err
	}
	return h.Room().Name, func(w io.Writer) error { return h.WriteJSON(w, time.Now()) }, nil
}

func (b boxAPI) stream(room string) (*store.HistoryStream, error) {
	h, err := b.store.Stream(room)
	if errors.Is(err, store.ErrNotFound) {
		return nil, web.ErrNoRoom
	}
	return h, err
}

func (b boxAPI) Member(room string, authors []string) (bool, error) {
	rh, err := b.store.RoomHistory(room)
	if errors.Is(err, store.ErrNotFound) {
		return false, web.ErrNoRoom
	}
	if err != nil {
		return false, err
	}
	for _, a := range authors {
		if _, ok := rh.At(a, 1); ok { // a stored chain starts at seq 1
			return true, nil
		}
	}
	return false, nil
}
