package web

import (
	"net/http"
	"path"
	"strings"
)

// The HTTPS API answers only requests addressed to the box itself (security review finding
// 22). A page on another site may make a phone's browser resolve the attacker's own name to
// the box's address (DNS rebinding); its requests then reach the box with the attacker's
// name in Host, and Origin matches Host, so sameOrigin alone lets them through. The TLS name
// check stops most of that already (the box's certificate does not cover the attacker's
// name), unless the user clicks through a certificate warning; this check does not depend
// on it.

// checkHost refuses every /api request whose Host is not one of the box's names or
// addresses (Options.BoxHost) with 421 Misdirected Request and a JSON {code, error}. The
// static page, /healthz, /ca.crt and /trust stay open to any Host: they hold nothing a
// stranger may not see, and a phone that reached the box by another name still gets the
// page and the way to trust it. A nil BoxHost turns the check off.
func (o Options) checkHost(next http.Handler) http.Handler {
	if o.BoxHost == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAPI(r.URL.Path) {
			host, ok := cleanHost(r.Host)
			if !ok || !o.BoxHost(host) {
				o.Logger.Debug("refused an API request addressed to another host", "host", r.Host, "path", r.URL.Path, "remote", r.RemoteAddr)
				fail(w, http.StatusMisdirectedRequest, "wrong-host",
					"this API answers only requests addressed to the box by its own name or address")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// isAPI reports whether p (as the request gave it, perhaps unclean: the mux redirects
// those) is under /api.
func isAPI(p string) bool {
	c := path.Clean("/" + p)
	return c == "/api" || strings.HasPrefix(c, "/api/")
}
