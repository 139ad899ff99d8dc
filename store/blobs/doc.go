// Package blobs is the box's store of files on disk: complete files named by their BEP 52
// root (written whole or not at all) with their leaves beside them, and the partial files
// of fetches in progress (fetch-<root>.part), their disk usage and their expiry. It owns
// the files directory; what moves pieces over a DataChannel is net/transfer, and the
// piece codec (sizes, hashes, frames) is net/pieces.
package blobs
