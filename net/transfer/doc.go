// Package transfer moves files between the box and its peers over a room's DataChannel
// (docs/PROTOCOL.md §5): the Seeder answers wants with hashes and pieces from the blob
// store, and the Fetcher (with one FetchLink per peer) queues announced files, asks peers
// for them, verifies every piece and commits the file whole. It owns the transfer state
// machines, the fetch queue and its limits; the bytes on disk are store/blobs, the frames
// and control messages are net/pieces.
package transfer
