package history

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The streamed export is byte for byte what json.Encoder writes for the whole value,
// compact and indented, empty or not, with or without a further array field.
func TestExportWriterBytes(t *testing.T) {
	full, _ := makeLog(t)
	type extra struct {
		Entry string `json:"entry"`
		N     int    `json:"n"`
	}
	type withMedia struct {
		*Export
		Media []extra `json:"media"`
	}
	for _, indent := range []string{"", " ", "\t"} {
		for _, l := range []*Log{NewLog(vecRoom), full} {
			for _, media := range [][]extra{nil, {}, {{"a<b>&", 1}, {"c", 2}}} {
				x := NewExport(l, `Aula "7" <b>`, vecNow)
				var want bytes.Buffer
				enc := json.NewEncoder(&want)
				enc.SetIndent("", indent)
				var v any = x
				if media != nil {
					v = withMedia{x, media}
				}
				if err := enc.Encode(v); err != nil {
					t.Fatal(err)
				}

				var got bytes.Buffer
				w := NewExportWriter(&got, x.Room, x.Exported, indent)
				for i, e := range x.Entries {
					if i%2 == 0 {
						if err := w.Entry(e); err != nil {
							t.Fatal(err)
						}
						continue
					}
					js, _ := json.Marshal(e)
					if err := w.EntryJSON(string(js)); err != nil {
						t.Fatal(err)
					}
				}
				if media != nil {
					w.Array("media")
					for _, m := range media {
						w.Elem(m)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Errorf("indent %q, %d entries, media %v:\n got %s\nwant %s", indent, l.Len(), media, got.Bytes(), want.Bytes())
				}
				if _, fails, err := VerifyExport(&got, vecNow); err != nil || len(fails) > 0 {
					t.Errorf("streamed export does not verify: %v %v", err, fails)
				}
			}
		}
	}
}
