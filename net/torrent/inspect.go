package torrent

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Inspect decodes an invitation file and returns all of its fields as indented JSON, for
// people (`chattorrent torrent inspect FILE`). It fails exactly when Decode fails.
func Inspect(b []byte) ([]byte, error) {
	inv, info, err := decode(b)
	if err != nil {
		return nil, err
	}
	type peer struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	type infoView struct {
		Name        string `json:"name"`
		Length      int64  `json:"length"`
		PieceLength int64  `json:"piece_length"`
		Pieces      int    `json:"pieces"`
	}
	view := struct {
		Role        Role     `json:"role"`
		Room        string   `json:"room"`
		RoomName    string   `json:"room_name"`
		Session     string   `json:"session"`
		Peer        peer     `json:"peer"`
		Fingerprint string   `json:"fingerprint"`
		Created     string   `json:"created"`
		CreatedBy   string   `json:"created_by"`
		InfoHash    string   `json:"info_hash"`
		Info        infoView `json:"info"`
		SDP         string   `json:"sdp"`
	}{
		Role:        inv.Role,
		Room:        inv.Room,
		RoomName:    inv.RoomName,
		Session:     inv.Session,
		Peer:        peer{inv.Peer.ID, inv.Peer.Name},
		Fingerprint: inv.Fingerprint,
		Created:     inv.Created.Format(time.RFC3339),
		CreatedBy:   inv.CreatedBy,
		InfoHash:    hex.EncodeToString(inv.InfoHash[:]),
		Info: infoView{
			Name:        info["name"].(string),
			Length:      info["length"].(int64),
			PieceLength: info["piece length"].(int64),
			Pieces:      len(info["pieces"].(string)) / 20,
		},
		SDP: inv.SDP,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(view); err != nil {
		return nil, fmt.Errorf("torrent: inspect: %w", err)
	}
	return buf.Bytes(), nil
}
