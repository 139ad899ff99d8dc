package pieces

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestFileNameVectors: a file entry's name follows the shared rule for names
// (store/history/testdata/names_vectors.json, also read by web/jstest/names.test.mjs):
// no control or format characters, so "photo\u202egpj.exe" is refused as bad-name.
func TestFileNameVectors(t *testing.T) {
	b, err := os.ReadFile("../../store/history/testdata/names_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		FileNames []struct {
			Name  string `json:"name"`
			Valid bool   `json:"valid"`
		} `json:"file_names"`
	}
	if err := json.Unmarshal(b, &v); err != nil || len(v.FileNames) == 0 {
		t.Fatal("no file names", err)
	}
	root := strings.Repeat("ab", 32)
	for _, c := range v.FileNames {
		body, _ := json.Marshal(map[string]any{"root": root, "size": 1, "name": c.Name, "type": ""})
		_, err := ParseMeta("file", string(body))
		var pe *Error
		switch {
		case c.Valid && err != nil:
			t.Errorf("ParseMeta(name %+q) = %v, want valid", c.Name, err)
		case !c.Valid && (!errors.As(err, &pe) || pe.Code != "bad-name"):
			t.Errorf("ParseMeta(name %+q) = %v, want bad-name", c.Name, err)
		}
	}
}
