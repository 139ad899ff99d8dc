package web

import (
	"net"
	"net/http"
	"net/netip"
)

// ICE is the box's STUN/TURN server (net/turn behind an adapter in firmware) as the
// page sees it: GET /api/ice.
type ICE interface {
	// ICEServers returns the servers for a page that reached the box at local (the box's
	// address on that connection) from client, with fresh credentials; nil when the box
	// serves no STUN/TURN on that address.
	ICEServers(local, client netip.Addr) []ICEServer
}

// ICEServer is one entry of RTCConfiguration.iceServers.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// maxICEServers caps what /api/ice returns (a page passes it to RTCPeerConnection as is).
const maxICEServers = 4

// apiICE: GET /api/ice → {"iceServers": [...]}. Same CSRF guard as the POSTs (the
// credentials are for this box's pages only), no CORS, never cached. The route always
// exists: a box that runs no STUN/TURN (Options.ICE nil, --turn-port -1, a TURN server
// that failed to start) answers an empty list, so a page never sees a 404 (and a console
// error) for each connection it offers.
func (o Options) apiICE(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		fail(w, http.StatusForbidden, "forbidden", "cross-site request refused")
		return
	}
	servers := []ICEServer{}
	local, lok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	client, cerr := netip.ParseAddrPort(r.RemoteAddr)
	if o.ICE != nil && lok && cerr == nil {
		if la, err := netip.ParseAddrPort(local.String()); err == nil {
			if s := o.ICE.ICEServers(la.Addr().Unmap(), client.Addr().Unmap()); len(s) > 0 {
				servers = s[:min(len(s), maxICEServers)]
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"iceServers": servers})
}
