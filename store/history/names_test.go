package history

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
)

// NamesVectors is testdata/names_vectors.json: the rule for names and file names that Go
// (here and net/pieces) and the page (web/jstest/names.test.mjs) share.
type NamesVectors struct {
	FormatCharacters []string `json:"format_characters"` // hex code points of Unicode Cf
	Names            []struct {
		Text  string `json:"text"`
		Valid bool   `json:"valid"`
	} `json:"names"`
	FileNames []struct {
		Name  string `json:"name"`
		Valid bool   `json:"valid"`
	} `json:"file_names"`
}

func loadNamesVectors(t *testing.T) NamesVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/names_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v NamesVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNamesVectors(t *testing.T) {
	v := loadNamesVectors(t)
	if len(v.Names) == 0 {
		t.Fatal("no names")
	}
	for _, c := range v.Names {
		if got := ValidText(c.Text, MaxName); got != c.Valid {
			t.Errorf("ValidText(%+q) = %v, want %v", c.Text, got, c.Valid)
		}
	}
}

// TestFormatCharacters: the Cf set of Go's tables is the one the vectors list (the page's
// engine is held to the same list), and every one of them is refused in a name.
func TestFormatCharacters(t *testing.T) {
	v := loadNamesVectors(t)
	want := map[rune]bool{}
	for _, h := range v.FormatCharacters {
		r, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		want[rune(r)] = true
	}
	n := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if unicode.Is(unicode.Cf, r) != want[r] {
			t.Errorf("U+%04X: Cf %v in Go, %v in the vectors", r, unicode.Is(unicode.Cf, r), want[r])
		}
		if want[r] {
			n++
			if s := "a" + string(r) + "b"; ValidText(s, MaxName) {
				t.Errorf("ValidText accepts U+%04X", r)
			}
		}
	}
	if n != len(v.FormatCharacters) {
		t.Errorf("%d format characters, the vectors list %d", n, len(v.FormatCharacters))
	}
}

// TestCheckRefusesFormatInName: an entry signed with a bidi override in its name is refused
// as bad-field name, however well signed.
func TestCheckRefusesFormatInName(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	_, key, _ := ed25519.GenerateKey(nil)
	e := Entry{Room: strings.Repeat("ab", 16), Name: "Ana\u202eevil", Seq: 1, TS: now.UnixMilli(), Kind: KindText, Body: "hi"}
	e.Sign(key)
	var he *Error
	if err := e.Check(e.Room, now); !errors.As(err, &he) || he.Code != CodeBadField || he.Field != "name" {
		t.Fatalf("Check = %v, want bad-field name", err)
	}
	e.Name = "Ana"
	e.Sign(key)
	if err := e.Check(e.Room, now); err != nil {
		t.Fatalf("Check(Ana) = %v", err)
	}
}
