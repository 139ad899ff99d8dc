package web

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"rsc.io/qr"
)

// The box lists its addresses and draws each as a QR code; nothing else is drawn.
func TestAddressAndQR(t *testing.T) {
	urls := []string{"https://chattorrent.local", "https://192.168.4.1"}
	h := New(Options{Addresses: func() []string { return urls }})

	w := do(t, h, "GET", "/api/box/address")
	var got struct{ URLs []string }
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil || strings.Join(got.URLs, " ") != strings.Join(urls, " ") {
		t.Fatalf("address: %d %s", w.Code, w.Body)
	}

	w = do(t, h, "GET", "/api/box/qr.svg?url="+url.QueryEscape(urls[1]))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("qr: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	checkSecurityHeaders(t, w)
	var svg struct {
		ViewBox string `xml:"viewBox,attr"`
		Path    struct {
			D string `xml:"d,attr"`
		} `xml:"path"`
	}
	if err := xml.Unmarshal(w.Body.Bytes(), &svg); err != nil {
		t.Fatalf("qr is not XML: %v", err)
	}
	code, err := qr.Encode(urls[1], qr.M)
	if err != nil {
		t.Fatal(err)
	}
	n := code.Size + 8
	if svg.ViewBox != fmt.Sprintf("0 0 %d %d", n, n) {
		t.Errorf("viewBox %q, want %d modules with the quiet zone", svg.ViewBox, n)
	}
	// Every module of the code, and only those, is drawn (offset by the quiet zone).
	black := 0
	for y := range code.Size {
		for x := range code.Size {
			m := fmt.Sprintf("M%d %dh1v1h-1z", x+4, y+4)
			if code.Black(x, y) {
				black++
				if !strings.Contains(svg.Path.D, m) {
					t.Fatalf("module %d,%d missing", x, y)
				}
			}
		}
	}
	if c := strings.Count(svg.Path.D, "M"); c != black {
		t.Errorf("%d modules drawn, the code has %d", c, black)
	}

	for _, bad := range []string{"https://evil.example", "", strings.Repeat("a", 300), urls[1] + "/x"} {
		if w := do(t, h, "GET", "/api/box/qr.svg?url="+url.QueryEscape(bad)); w.Code != http.StatusNotFound {
			t.Errorf("qr of %q: %d, want 404", bad, w.Code)
		}
	}
	if w := do(t, New(Options{}), "GET", "/api/box/address"); w.Code != http.StatusNotFound {
		t.Errorf("address without Addresses: %d, want 404", w.Code)
	}
}
