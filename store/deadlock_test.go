package store

import (
	"runtime"
	"testing"
	"time"
)

// TestRoomWithWriterWaiting: Room must not take the room's read lock twice. With a writer
// blocked on the room's lock between the two RLocks, the second RLock waits for the writer,
// which waits for the first RLock: a deadlock. The hook makes that interleaving certain.
func TestRoomWithWriterWaiting(t *testing.T) {
	s := mustOpen(t, t.TempDir(), testOptions(t, nil))
	deadlocked := false
	t.Cleanup(func() {
		if !deadlocked { // Close would wait forever for the stuck Room
			s.Close()
		}
	})
	if err := s.CreateRoom(roomA, "Aula 7"); err != nil {
		t.Fatal(err)
	}
	rh, err := s.RoomHistory(roomA)
	if err != nil {
		t.Fatal(err)
	}
	writerDone := make(chan struct{})
	testHookRoomLocked = func(r *room) {
		go func() {
			defer close(writerDone)
			rh.MarkForked(author(testKey('a'))) // takes the room's lock for writing
		}()
		// Wait until the writer is blocked on r.mu: then TryRLock fails, since a waiting
		// writer holds back new readers. Until then a TryRLock succeeds (and is undone).
		for r.mu.TryRLock() {
			r.mu.RUnlock()
			runtime.Gosched()
		}
	}
	t.Cleanup(func() { testHookRoomLocked = nil })

	done := make(chan error, 1)
	go func() {
		_, err := s.Room(roomA)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("room: %v", err)
		}
	case <-time.After(5 * time.Second):
		deadlocked = true
		t.Fatal("Store.Room deadlocked: it takes the room's read lock twice while a writer waits")
	}
	select {
	case <-writerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer never got the room's lock after Room returned")
	}
}
