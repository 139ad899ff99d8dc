package torrent

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that Decode never panics and that whatever it accepts re-encodes to an
// invitation that decodes to the same fields (InfoHash aside: info.name and unknown keys are
// not carried over).
func FuzzDecode(f *testing.F) {
	for _, v := range readVectors(f).Vectors {
		b, err := os.ReadFile(filepath.Join("testdata", v.File))
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 4096 {
			continue // large seeds make the fuzzer spend its time minimising them
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := Decode(b)
		if _, ierr := Inspect(b); (ierr == nil) != (err == nil) {
			t.Fatalf("Decode error %v but Inspect error %v", err, ierr)
		}
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is a %T, not *Error", err, err)
			}
			return
		}
		again, err := Encode(inv)
		if err != nil {
			t.Fatalf("Encode(Decode(x)): %v", err)
		}
		inv2, err := Decode(again)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(x))): %v", err)
		}
		a, b2 := *inv, *inv2
		a.InfoHash, b2.InfoHash = [20]byte{}, [20]byte{}
		if a != b2 {
			t.Fatalf("round trip changed the invitation:\n%+v\n%+v", a, b2)
		}
		if !a.Created.Equal(b2.Created) {
			t.Fatal("round trip changed Created")
		}
	})
}
