package torrent

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chattorrent/chattorrent/store/testenv"
)

// TestTransmissionShow runs a real BitTorrent client's parser (transmission-show, Debian
// package transmission-cli) on an invitation. It skips when the tool is absent, unless
// CI=true.
func TestTransmissionShow(t *testing.T) {
	bin, err := exec.LookPath("transmission-show")
	if err != nil {
		testenv.SkipOrFail(t, "transmission-show not installed")
	}
	for _, name := range []string{"valid_unicode_room_name", "valid_two_pieces"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name+".torrent"))
			if err != nil {
				t.Fatal(err)
			}
			inv, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), FileName(inv.RoomName, inv.Role))
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, path)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("transmission-show: %v\n%s", err, out)
			}
			s := string(out)
			wantName := SafeFileName(inv.RoomName) + "_" + string(inv.Role) + ".sdp"
			size := fmt.Sprintf("%.2f kB", float64(len(inv.SDP))/1000) // all our SDPs are < 1 MB
			for _, want := range []string{
				"Name: " + wantName,
				"Hash: " + hex.EncodeToString(inv.InfoHash[:]),
				"Total Size: " + size,
				wantName + " (" + size + ")",
				"Piece Count: " + strconv.Itoa((len(inv.SDP)+PieceLength-1)/PieceLength),
				"Piece Size: 16.00 KiB",
				"Comment: " + Comment,
				"Created by: " + inv.CreatedBy,
			} {
				if !strings.Contains(s, want) {
					t.Errorf("output lacks %q:\n%s", want, s)
				}
			}
		})
	}
}
