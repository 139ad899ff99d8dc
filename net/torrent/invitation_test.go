package torrent

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readVectors(t testing.TB) vectorFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(b, &vf); err != nil {
		t.Fatal(err)
	}
	return vf
}

func TestVectors(t *testing.T) {
	vf := readVectors(t)
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", v.File))
			if err != nil {
				t.Fatal(err)
			}
			inv, err := Decode(b)
			if !v.Valid {
				var te *Error
				if !errors.As(err, &te) {
					t.Fatalf("Decode: got %v, want an *Error with code %s", err, v.Code)
				}
				if te.Code != v.Code || te.Field != v.Field {
					t.Fatalf("Decode: got code %q field %q (%v), want code %q field %q", te.Code, te.Field, err, v.Code, v.Field)
				}
				if !errors.Is(err, &Error{Code: v.Code}) {
					t.Errorf("errors.Is by code failed for %v", err)
				}
				if _, err := Inspect(b); err == nil {
					t.Error("Inspect succeeded on an invalid file")
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := expectOf(inv); *got != *v.Expect {
				t.Fatalf("Decode:\n got %+v\nwant %+v", got, v.Expect)
			}
			if v.Input != nil {
				enc, err := Encode(v.Input.invitation())
				if err != nil {
					t.Fatalf("Encode: %v", err)
				}
				if !bytes.Equal(enc, b) {
					t.Fatal("Encode(input) differs from the file")
				}
			}
		})
	}
	for _, v := range vf.EncodeErrors {
		t.Run(v.Name, func(t *testing.T) {
			_, err := Encode(v.Input.invitation())
			var te *Error
			if !errors.As(err, &te) || te.Code != v.Code || te.Field != v.Field {
				t.Fatalf("Encode: got %v, want code %q field %q", err, v.Code, v.Field)
			}
		})
	}
}

func TestVectorsCoverEveryCode(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range readVectors(t).Vectors {
		seen[v.Code] = true
	}
	for _, code := range []string{CodeTooLarge, CodeEmpty, CodeMalformed, CodeTruncated, CodeNotTorrent,
		CodeNotChatTorrent, CodeVersion, CodeBadField, CodePiecesMismatch, CodeFingerprintMismatch} {
		if !seen[code] {
			t.Errorf("no vector for %s", code)
		}
	}
}

func TestSentinels(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want error
	}{
		{nil, ErrEmpty},
		{make([]byte, MaxSize+1), ErrTooLarge},
		{[]byte("i1"), ErrTruncated},
		{[]byte("x"), ErrMalformed},
		{[]byte("le"), ErrNotTorrent},
		{[]byte("d4:infod6:lengthi0e4:name0:12:piece lengthi1e6:pieces0:ee"), ErrNotChatTorrent},
	} {
		_, err := Decode(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("Decode(%q): got %v, want %v", tc.in, err, tc.want)
		}
		if errors.Is(err, ErrBadField) {
			t.Errorf("Decode(%q): %v matches ErrBadField", tc.in, err)
		}
		wrapped := errors.Join(errors.New("import"), err)
		if !errors.Is(wrapped, tc.want) {
			t.Errorf("wrapped %v does not match", err)
		}
	}
	_, err := Decode(mustEncode(t, func(inv *Invitation) {}, func(b []byte) []byte {
		return bytes.Replace(b, []byte(roomA), []byte(strings.ToUpper(roomA)), 1)
	}))
	if !errors.Is(err, ErrBadField) || !errors.Is(err, &Error{Code: CodeBadField, Field: "room"}) ||
		errors.Is(err, &Error{Code: CodeBadField, Field: "session"}) {
		t.Errorf("got %v", err)
	}
	if got, want := err.Error(), "torrent: bad-field room: want 32 lowercase hex characters"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func mustEncode(t *testing.T, edit func(*Invitation), after func([]byte) []byte) []byte {
	t.Helper()
	inv := offerInput().invitation()
	edit(inv)
	b, err := Encode(inv)
	if err != nil {
		t.Fatal(err)
	}
	return after(b)
}

func TestEncodeDefaults(t *testing.T) {
	inv := offerInput().invitation()
	inv.Created, inv.CreatedBy, inv.Fingerprint = time.Time{}, "", ""
	before := *inv
	b, err := Encode(inv)
	if err != nil {
		t.Fatal(err)
	}
	if *inv != before {
		t.Error("Encode changed its argument")
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedBy != DefaultCreatedBy {
		t.Errorf("CreatedBy = %q", got.CreatedBy)
	}
	if d := time.Since(got.Created); d < 0 || d > time.Minute {
		t.Errorf("Created = %v, want about now", got.Created)
	}
	if got.Fingerprint != fakeFingerprint("offer") {
		t.Errorf("Fingerprint = %q", got.Fingerprint)
	}
	if _, err := Encode(nil); !errors.Is(err, ErrBadField) {
		t.Errorf("Encode(nil) = %v", err)
	}
}

func TestFileName(t *testing.T) {
	for _, tc := range []struct {
		room string
		role Role
		want string
	}{
		{"Sala Niño ✓", RoleOffer, "Sala_Niño_offer.torrent"},
		{"", RoleAnswer, "room_answer.torrent"},
		{"../../etc/passwd", RoleOffer, "etc_passwd_offer.torrent"},
	} {
		if got := FileName(tc.room, tc.role); got != tc.want {
			t.Errorf("FileName(%q, %s) = %q, want %q", tc.room, tc.role, got, tc.want)
		}
	}
}

func TestSafeFileName(t *testing.T) {
	// Hand-checked cases; safe_names.json holds more, shared with JS.
	for in, want := range map[string]string{
		"Sala Niño ✓":                   "Sala_Niño",
		"../../etc/passwd":              "etc_passwd",
		"":                              "room",
		"a/b\\c":                        "a_b_c",
		"...":                           "room",
		"🎉 Party 🎉":                     "Party",
		"x² Ⅻ ½":                        "x²_Ⅻ_½",
		"Sala Nin\u0303o":               "Sala_Nin_o",
		strings.Repeat("a", 47) + ".bc": strings.Repeat("a", 47),
		strings.Repeat("ñ", 60):         strings.Repeat("ñ", 48),
		"bad \xff utf8":                 "bad_utf8",
	} {
		if got := SafeFileName(in); got != want {
			t.Errorf("SafeFileName(%q) = %q, want %q", in, got, want)
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata", "safe_names.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []safeName
	if err := json.Unmarshal(b, &names); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		got := SafeFileName(n.Input)
		if got != n.Output {
			t.Errorf("SafeFileName(%q) = %q, want %q", n.Input, got, n.Output)
		}
		if strings.ContainsAny(got, "/\\:\x00") || strings.HasPrefix(got, ".") || len([]rune(got)) > 48 {
			t.Errorf("SafeFileName(%q) = %q is not safe", n.Input, got)
		}
	}
}

func TestInspect(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "valid_unicode_room_name.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := Inspect(b)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	info := got["info"].(map[string]any)
	for k, want := range map[string]any{
		"role": "offer", "room": roomA, "room_name": "Sala Niño ✓", "session": sessionA,
		"created": "2026-01-01T00:00:00Z", "created_by": "ChatTorrent 0.1.0",
		"fingerprint": fakeFingerprint("offer"), "sdp": chromiumSDP(RoleOffer, "offer"),
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if got["peer"].(map[string]any)["name"] != "Zoë 🎉" || len(got["info_hash"].(string)) != 40 {
		t.Errorf("peer or info_hash wrong: %s", js)
	}
	if info["name"] != "Sala_Niño_offer.sdp" || info["piece_length"] != 16384.0 || info["pieces"] != 1.0 ||
		info["length"] != float64(len(chromiumSDP(RoleOffer, "offer"))) {
		t.Errorf("info = %v", info)
	}
	if !bytes.Contains(js, []byte("\n  \"role\"")) {
		t.Errorf("not indented: %s", js[:40])
	}
}
