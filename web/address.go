package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"rsc.io/qr"
)

// maxQRURL bounds a URL drawn as a QR code (an address of the box is far shorter).
const maxQRURL = 200

// apiAddress lists the box's addresses (GET /api/box/address): its mDNS name first, then
// its IP addresses, which some Android versions need as they do not resolve ".local".
func (o Options) apiAddress(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		URLs []string `json:"urls"`
	}{URLs: o.Addresses()})
}

// apiQR draws one of the box's addresses as a QR code (GET /api/box/qr.svg?url=U). Only
// an address the box lists is drawn: the endpoint is no general QR service.
func (o Options) apiQR(w http.ResponseWriter, r *http.Request) {
	u := r.URL.Query().Get("url")
	if len(u) > maxQRURL || !slices.Contains(o.Addresses(), u) {
		http.Error(w, "not an address of this box", http.StatusNotFound)
		return
	}
	code, err := qr.Encode(u, qr.M)
	if err != nil {
		o.Logger.Warn("qr", "url", u, "err", err)
		http.Error(w, "cannot draw this address", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(qrSVG(code))
}

// qrSVG draws code as an SVG path, one unit per module, with the 4-module quiet zone the
// standard asks for.
func qrSVG(code *qr.Code) []byte {
	const quiet = 4
	n := code.Size + 2*quiet
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y := range code.Size {
		for x := range code.Size {
			if code.Black(x, y) {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x+quiet, y+quiet)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return []byte(b.String())
}
