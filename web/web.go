// Package web serves the browser UI of the appliance: the embedded static files, a health
// check, the box's CA certificate and the "trust this box" page, all with strict security
// headers. NewRedirect is the plain-HTTP side: it hands out the CA and the trust page (a
// phone must fetch the CA before it trusts the HTTPS side) and redirects the rest to HTTPS.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var embedded embed.FS

// Options configures New and NewRedirect. The zero value serves the embedded UI with no CA.
type Options struct {
	// Static holds the UI files (index.html at its root). Default: the files embedded from
	// web/static at build time. An os.DirFS here lets the UI be edited without a rebuild.
	Static fs.FS
	// Version is reported by /healthz. Default "dev".
	Version string
	// CAPEM is the box's CA certificate (PEM), served at /ca.crt. Empty: /ca.crt is 404.
	CAPEM []byte
	// CAFingerprint is the CA's SHA-256 fingerprint as shown on the trust page.
	CAFingerprint string
	// Logger receives request errors. Default: discarded.
	Logger *slog.Logger
	// Box, when set, serves the appliance-as-a-peer API under /api (see api.go).
	Box Box
	// LocalToken, when set, is the secret the box writes into its data directory for
	// commands run on the box itself (chattorrent export): a request carrying it in
	// X-ChatTorrent-Local may list and export every room, as reading the data directory
	// could. Nobody on the LAN can read it.
	LocalToken string
	// Members holds who proved which identity key (member.go); default: a new one.
	Members *Members
	// Activity says what the box does in members' rooms (activity.go); default: a new one
	// that nothing sets.
	Activity *Activity
	// Drop, when set, serves the offer drop box under /api/drop (see dropbox.go).
	Drop *DropBox
	// Hardware, when set with Box, serves the board's status and the box's microphone.
	Hardware BoxHardware
	// ICE, when set, hands pages the box's STUN/TURN servers at GET /api/ice (ice.go);
	// without it /api/ice answers an empty list.
	ICE ICE
	// Addresses, when set, lists the URLs phones open the box at (mDNS name first), served
	// as text and QR codes under /api/box (see address.go).
	Addresses func() []string
	// BoxHost, when set, says whether a request's host (lowercase, without port or
	// brackets) is one of the box's own names or addresses. New then refuses /api requests
	// to any other host (host.go), and NewRedirect sends a request for any other name (the
	// generic chattorrent.local that several boxes may answer) to CanonicalHost.
	BoxHost func(host string) bool
	// CanonicalHost, when set with BoxHost, returns the name NewRedirect sends requests for
	// a name that is not the box's to, such as "chattorrent-3f9a1c.local".
	CanonicalHost func() string
	// Owner, when set, serves the owner's claim and settings under /api/owner (owner.go,
	// owner_api.go); the owner may switch the box's microphone off.
	Owner *Owner
	// OwnerBox, when set with Owner, shows the owner the storage and logs and offers the
	// factory reset (owner_box.go).
	OwnerBox OwnerBox
	// Update, when set with Owner, lets the owner upload a signed release (update_api.go).
	Update Updater
	// BodyReadTimeout bounds how long a request may take to send its body (limits.go);
	// 0 means DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// WriteTimeout bounds each write of an event stream or an export to a client that does
	// not read; 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration

	streams *streamSlots // the event streams open, per client and in all (limits.go)
	exports exportSlots  // the exports running (limits.go)
	refused *refusals    // the refusals logged lately
}

// ContentSecurityPolicy is sent with every response: no inline scripts or styles, nothing
// from other origins, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; " +
	"base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// maxHostLen bounds the Host header the redirect handler accepts (a DNS name is ≤ 253).
const maxHostLen = 253

func (o Options) withDefaults() Options {
	if o.Static == nil {
		sub, err := fs.Sub(embedded, "static")
		if err != nil { // cannot happen: "static" is a valid path
			sub = embedded
		}
		o.Static = sub
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = o.Logger.With("component", "web")
	if o.Members == nil {
		o.Members = NewMembers(nil)
	}
	if o.Activity == nil {
		o.Activity = NewActivity()
	}
	if o.BodyReadTimeout <= 0 {
		o.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	o.streams, o.refused, o.exports = newStreamSlots(), newRefusals(), newExportSlots()
	return o
}

// New returns the HTTPS handler: GET /healthz, /ca.crt, /trust and the static UI at /.
//
// No Strict-Transport-Security header is sent: the certificate comes from the box's own CA,
// and HSTS would turn a phone's one-time "continue anyway" into a hard failure whenever the
// box is reset with a new CA, or leave a stale pin on a name (chattorrent.local) that another
// box may answer tomorrow.
func New(opts Options) http.Handler {
	opts = opts.withDefaults()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", opts.healthz)
	mux.HandleFunc("GET /ca.crt", opts.caCert)
	mux.HandleFunc("GET /trust", func(w http.ResponseWriter, r *http.Request) { opts.trust(w, r, "/") })
	mux.Handle("GET /", staticHandler{fsys: opts.Static, log: opts.Logger})
	mux.HandleFunc("GET /shell.json", opts.shell)
	if opts.Box != nil {
		mux.HandleFunc("POST /api/member/challenge", opts.memberChallenge)
		mux.HandleFunc("POST /api/member/proof", opts.memberProof)
		mux.HandleFunc("GET /api/member/events", opts.memberEvents)
		mux.HandleFunc("GET /api/rooms", opts.apiRooms)
		mux.HandleFunc("POST /api/rooms/connect", opts.apiConnect)
		mux.HandleFunc("GET /api/rooms/{id}/history.json", opts.apiHistory)
		mux.HandleFunc("GET /api/rooms/{id}/history.zip", opts.apiHistoryZip)
		if opts.Hardware != nil {
			mux.HandleFunc("GET /api/box/status", opts.apiStatus)
			mux.HandleFunc("POST /api/rooms/{id}/voice", opts.apiVoice)
		}
	}
	if opts.Addresses != nil {
		mux.HandleFunc("GET /api/box/address", opts.apiAddress)
		mux.HandleFunc("GET /api/box/qr.svg", opts.apiQR)
	}
	mux.HandleFunc("GET /api/ice", opts.apiICE) // an empty list without ICE (ice.go)
	if opts.Owner != nil {
		opts.ownerRoutes(mux)
		if opts.Update != nil {
			opts.updateRoutes(mux) // update_api.go
		}
		if opts.OwnerBox != nil {
			opts.ownerBoxRoutes(mux) // owner_box.go
		}
	}
	if opts.Drop != nil {
		mux.HandleFunc("GET /api/drop/offers", opts.dropList)
		mux.HandleFunc("POST /api/drop/offers", opts.dropPublish)
		mux.HandleFunc("GET /api/drop/events", opts.dropEvents)
		mux.HandleFunc("GET /api/drop/offers/{id}/torrent", opts.dropTorrent)
		mux.HandleFunc("POST /api/drop/offers/{id}/answers", opts.dropAnswer)
		mux.HandleFunc("GET /api/drop/offers/{id}/answers", opts.dropAnswers)
		mux.HandleFunc("POST /api/drop/offers/{id}/answers/{aid}/{verdict}", opts.dropDecide)
		mux.HandleFunc("GET /api/drop/offers/{id}/answers/{aid}", opts.dropVerdict)
		mux.HandleFunc("DELETE /api/drop/offers/{id}", opts.dropWithdraw)
	}
	return securityHeaders(opts.checkHost(mux))
}

// NewRedirect returns the plain-HTTP handler: GET /ca.crt and /trust are served as in New;
// every other request is redirected (308) to the same path on httpsPort, at the same host
// when it is one of the box's (Options.BoxHost), else at Options.CanonicalHost: the HTTPS
// certificate covers only the box's own names, so a phone that typed the generic
// chattorrent.local is sent to this box's unique name. A missing, malformed or over-long
// Host header is refused with 400.
func NewRedirect(httpsPort int, opts Options) http.Handler {
	opts = opts.withDefaults()
	target := func(r *http.Request) string {
		h := hostOf(r)
		if opts.BoxHost != nil && opts.CanonicalHost != nil && !opts.BoxHost(h) {
			if c, ok := cleanHost(opts.CanonicalHost()); ok {
				return c
			}
		}
		return h
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ca.crt", opts.caCert)
	mux.HandleFunc("GET /trust", func(w http.ResponseWriter, r *http.Request) {
		opts.trust(w, r, httpsURL(target(r), httpsPort, "/", ""))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, httpsURL(target(r), httpsPort, r.URL.EscapedPath(), r.URL.RawQuery), http.StatusPermanentRedirect)
	})
	return securityHeaders(validHost(mux))
}

type hostKey struct{}

func contextWithHost(r *http.Request, host string) context.Context {
	return context.WithValue(r.Context(), hostKey{}, host)
}

// hostOf returns the host validHost stored for r.
func hostOf(r *http.Request) string {
	h, _ := r.Context().Value(hostKey{}).(string)
	return h
}

// validHost checks the Host header and stores the bare host in the request context.
func validHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, ok := cleanHost(r.Host)
		if !ok {
			http.Error(w, "bad Host header", http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r.WithContext(contextWithHost(r, host)))
	})
}

// cleanHost strips the port and brackets from a Host header and checks that what remains is
// an IP address or a DNS name.
func cleanHost(h string) (string, bool) {
	if h == "" || len(h) > maxHostLen+8 {
		return "", false
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if h == "" || len(h) > maxHostLen {
		return "", false
	}
	if ip := net.ParseIP(h); ip != nil {
		return h, true
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return h, true
}

func httpsURL(host string, port int, escapedPath, rawQuery string) string {
	u := url.URL{Scheme: "https", Host: host, RawPath: escapedPath, RawQuery: rawQuery}
	u.Path, _ = url.PathUnescape(escapedPath)
	if strings.Contains(host, ":") {
		u.Host = "[" + host + "]"
	}
	if port != 443 {
		u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	return u.String()
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "microphone=(self), camera=(), geolocation=()")
		next.ServeHTTP(w, r)
	})
}

func (o Options) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}{"ok", o.Version})
}

func (o Options) caCert(w http.ResponseWriter, r *http.Request) {
	if len(o.CAPEM) == 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-x509-ca-cert")
	w.Header().Set("Content-Disposition", `attachment; filename="chattorrent-ca.crt"`)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "chattorrent-ca.crt", time.Time{}, bytes.NewReader(o.CAPEM))
}

var trustPage = template.Must(template.New("trust").Parse(`<!doctype html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Confiar en esta caja · Trust this box — ChatTorrent</title>
</head>
<body>
<main>
<section lang="es">
<h1>Confiar en esta caja ChatTorrent</h1>
<p>La caja usa su propio certificado. Instálalo una vez y el navegador abrirá el chat sin avisos
(el micrófono y el cifrado lo necesitan).</p>
<p><a href="/ca.crt" download="chattorrent-ca.crt">Descargar el certificado (chattorrent-ca.crt)</a></p>
<p>El certificado solo sirve para esta caja: no permite suplantar otras webs, otras cajas ni
el router. Bórralo de los ajustes cuando dejes de usar la caja.</p>
<p>Comprueba que la huella SHA-256 coincide con la que muestra el teléfono:</p>
<p><code>{{.Fingerprint}}</code></p>
<ul>
<li><strong>Android:</strong> Ajustes → Seguridad → Cifrado y credenciales → Instalar un certificado → Certificado de CA → elige chattorrent-ca.crt.</li>
<li><strong>iPhone/iPad:</strong> abre este enlace en Safari y permite la descarga; Ajustes → General → VPN y gestión de dispositivos → instala el perfil; después Ajustes → General → Información → Ajustes de confianza de certificados → activa «ChatTorrent».</li>
<li><strong>Ordenador:</strong> Chrome/Edge: Configuración → Privacidad y seguridad → Seguridad → Gestionar certificados → Autoridades → Importar. Firefox: Ajustes → Privacidad y seguridad → Ver certificados → Autoridades → Importar, marca «identificar sitios web». macOS: ábrelo en Acceso a Llaveros y elige «Confiar siempre».</li>
</ul>
<p><a href="{{.Continue}}">Ir al chat</a></p>
</section>
<hr>
<section lang="en">
<h1>Trust this ChatTorrent box</h1>
<p>The box uses its own certificate. Install it once and the browser opens the chat without
warnings (the microphone and encryption need that).</p>
<p><a href="/ca.crt" download="chattorrent-ca.crt">Download the certificate (chattorrent-ca.crt)</a></p>
<p>The certificate is good for this box only: it cannot be used to impersonate other
sites, other boxes or the router. Remove it in your settings when you stop using the box.</p>
<p>Check that the SHA-256 fingerprint matches the one your device shows:</p>
<p><code>{{.Fingerprint}}</code></p>
<ul>
<li><strong>Android:</strong> Settings → Security → Encryption &amp; credentials → Install a certificate → CA certificate → pick chattorrent-ca.crt.</li>
<li><strong>iPhone/iPad:</strong> open this link in Safari and allow the download; Settings → General → VPN &amp; Device Management → install the profile; then Settings → General → About → Certificate Trust Settings → turn on “ChatTorrent”.</li>
<li><strong>Computer:</strong> Chrome/Edge: Settings → Privacy and security → Security → Manage certificates → Authorities → Import. Firefox: Settings → Privacy &amp; Security → View Certificates → Authorities → Import, tick “identify websites”. macOS: open it in Keychain Access and choose “Always Trust”.</li>
</ul>
<p><a href="{{.Continue}}">Open the chat</a></p>
</section>
</main>
</body>
</html>
`))

func (o Options) trust(w http.ResponseWriter, r *http.Request, continueURL string) {
	var buf bytes.Buffer
	err := trustPage.Execute(&buf, struct{ Fingerprint, Continue string }{o.CAFingerprint, continueURL})
	if err != nil {
		o.Logger.Error("render trust page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(buf.Bytes())
}

// contentTypes are fixed here rather than taken from the system's mime tables, which differ
// between a developer's machine and the box.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".webmanifest": "application/manifest+json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".webp":        "image/webp",
	".woff2":       "font/woff2",
	".wasm":        "application/wasm",
	".txt":         "text/plain; charset=utf-8",
	".map":         "application/json",
}

func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if ct, ok := contentTypes[ext]; ok {
		return ct
	}
	if ct := mime.TypeByExtension(ext); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// staticHandler serves files from fsys: "/" is index.html, a directory without a trailing
// slash or without an index.html is 404 (no listings), hidden files are 404. Every file is
// sent with Cache-Control: no-cache and a content ETag, so browsers revalidate and an update
// of the box takes effect on the next load.
type staticHandler struct {
	fsys fs.FS
	log  *slog.Logger
}

func (s staticHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if strings.HasSuffix(r.URL.Path, "/") {
		name = path.Join(name, "index.html")
	}
	if name == "" || !fs.ValidPath(name) || hidden(name) {
		http.NotFound(w, r)
		return
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		http.NotFound(w, r)
		return
	}
	data, err := io.ReadAll(f)
	if err != nil {
		s.log.Error("read static file", "file", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(data)
	h := w.Header()
	h.Set("Content-Type", contentType(name))
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	http.ServeContent(w, r, name, fi.ModTime(), bytes.NewReader(data))
}

// shell: GET /shell.json → {"version": ..., "files": ["/", "/app.css", ...]}, every file
// of the UI (index.html as "/", no hidden files, not sw.js itself): what the service worker
// (static/sw.js) stores at install so the page opens without the box. Listed from the
// files served, so a new module is never left out. Never cached.
func (o Options) shell(w http.ResponseWriter, r *http.Request) {
	files := []string{}
	err := fs.WalkDir(o.Static, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." && hidden(p) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir() || p == "sw.js":
		case p == "index.html":
			files = append(files, "/")
		case path.Base(p) != "index.html":
			files = append(files, "/"+p)
		}
		return nil
	})
	if err != nil {
		o.Logger.Error("list static files", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(struct {
		Version string   `json:"version"`
		Files   []string `json:"files"`
	}{o.Version, files})
}

func hidden(name string) bool {
	for part := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(part, ".") {
			return true
		}
	}
	return false
}
