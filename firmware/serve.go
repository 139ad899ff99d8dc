package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/chattorrent/chattorrent/board"
	"github.com/chattorrent/chattorrent/net/archiver"
	"github.com/chattorrent/chattorrent/net/cert"
	"github.com/chattorrent/chattorrent/net/mdns"
	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/atomicfile"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/web"
)

// shutdownTimeout bounds how long open requests may take to finish on exit.
const shutdownTimeout = 5 * time.Second

// serveDeps is what serveWith gets apart from the user's Config: the tests' seams and the
// updater serveUpdatable (updates.go) makes for the real box. The zero value is a box
// without updates.
type serveDeps struct {
	// board, when set, is used instead of the hardware board.Open finds.
	board *board.Board
	// onLED, when set, is told each pattern the status LED is given.
	onLED func(board.Pattern)
	// updater, when set (serveUpdatable, the real box), lets the owner upload releases and
	// reset the box, and watches a new release's trial.
	updater *updater
}

// serveWith runs the appliance until ctx is cancelled (a clean exit: nil). It is wiring only, in the order the box comes up: each
// step is a method of box below.
func serveWith(ctx context.Context, cfg Config, logOut io.Writer, deps serveDeps) error {
	base := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))
	b := &box{cfg: cfg, deps: deps, base: base, log: base.With("component", "firmware"), logOut: logOut}
	defer b.close()
	b.log.Info("starting", "version", version, "commit", commit, "data_dir", cfg.DataDir)
	// A restore the owner made: its identity, CA and settings before anything reads them.
	if err := applyRestore(cfg.DataDir, b.log); err != nil {
		return err
	}
	for _, step := range []func(context.Context) error{
		b.openBoard,    // first: its LED says "starting" while the rest opens
		b.openIdentity, // name, identity key, certificate
		b.openStore,    // the clock, rooms and files
		b.openPeer,     // the WebRTC port, STUN/TURN, the archiver
		b.openHardware, // microphone, owner, buttons and LED
		b.openWeb,      // the handler's options
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	srv, err := b.listen(ctx)
	if err != nil || srv == nil { // nil, nil: stopped while starting
		return err
	}
	b.logURLs(srv)
	return b.run(ctx, srv)
}

// box is the appliance being wired: what each step of serve opened, for the next steps.
// close undoes what was opened, in reverse.
type box struct {
	cfg    Config
	deps   serveDeps
	base   *slog.Logger // the root logger every part derives from
	log    *slog.Logger
	logOut io.Writer
	undo   []func() // run by close, last first

	brd          *board.Board
	blink        *board.Blinker
	addrs        []netip.Addr
	explicitHost bool     // --hostname given: mDNS does not also answer the generic name
	alts         []string // the names mDNS may take on a clash, the first being Hostname
	id           *store.Identity
	cert         *cert.Box
	clock        *archiver.Clock
	st           *store.Store
	files        *blobs.Store
	subnets      []netip.Prefix
	wnet         *webrtcNet
	arch         *archiver.Archiver
	owner        *web.Owner
	hw           *hardware
	webOpts      web.Options
}

// onClose adds f to what close undoes.
func (b *box) onClose(f func()) { b.undo = append(b.undo, f) }

func (b *box) close() {
	for i := len(b.undo) - 1; i >= 0; i-- {
		b.undo[i]()
	}
}

// openBoard opens the hardware (or the tests' board) and starts the status LED.
func (b *box) openBoard(ctx context.Context) error {
	b.cfg.Board.Logger = b.base
	b.brd = b.deps.board
	if b.brd == nil {
		brd, err := board.Open(ctx, b.cfg.Board)
		if err != nil {
			return err
		}
		b.brd = brd
		b.onClose(func() { brd.Close() })
	}
	blink, stopLED := startLED(ctx, b.brd.LED, b.base)
	b.blink = blink
	b.onClose(stopLED) // before the board closes: the LED is left dark
	return nil
}

// openIdentity finds the box's addresses and name (--hostname, else chattorrent-<6 hex>
// from its identity key) and loads its certificate.
func (b *box) openIdentity(context.Context) error {
	addrs, err := cert.InterfaceAddrs()
	if err != nil {
		return err
	}
	b.addrs = addrs
	b.explicitHost = b.cfg.Hostname != ""
	named, err := ownerBoxName(b.cfg.DataDir, b.log) // boxname.go: the owner's name wins
	if err != nil {
		return err
	}
	host, id, err := boxHostname(b.cfg.DataDir, cmp.Or(named, b.cfg.Hostname))
	if err != nil {
		return err
	}
	b.cfg.Hostname, b.id = host, id
	if named == "" {
		logHostname(b.log, b.cfg.Hostname, b.explicitHost)
	} else if err := retireCAForName(b.cfg.DataDir, named, time.Now(), b.log); err != nil {
		return err
	}
	// The certificate covers every name mDNS may take on a clash (name-2 … name-16).
	if b.alts, err = mdns.Candidates(b.cfg.Hostname); err != nil {
		return fmt.Errorf("serve: --hostname: %w", err)
	}
	b.cert, err = cert.Load(b.cfg.DataDir, cert.Options{
		Hostname:     b.cfg.Hostname,
		AltHostnames: b.alts[1:],
		Addrs:        func() ([]netip.Addr, error) { return addrs, nil },
		Logger:       b.base,
		Now:          flooredClock(time.Now, builtAt()), // a Pi without a clock: never certificates from 1970
	})
	if err != nil {
		return err
	}
	b.log.Info("identity", "name", id.Name, "fingerprint", id.Fingerprint())
	return nil
}

// openStore opens the rooms and the files. Members' phones correct a box that booted
// with a stale time (archiver/clock.go); the build time is a floor the system time
// cannot honestly be under.
func (b *box) openStore(context.Context) error {
	b.clock = archiver.NewClock(archiver.ClockOptions{Logger: b.base, NotBefore: builtAt()})
	setMemoryLimit(b.log)
	st, err := store.Open(filepath.Join(b.cfg.DataDir, "store"), store.Options{Logger: b.base, Now: b.clock.Now,
		Limits: store.Limits{StoreBytes: b.cfg.StoreBudget},
		Busy:   newNotifier(os.Getenv, b.base).busy(time.Now)}) // a long migration under systemd
	if err != nil {
		return err
	}
	b.st = st
	b.onClose(func() { st.Close() })
	releaseMemory()
	b.files, err = blobs.New(filepath.Join(b.cfg.DataDir, "files"), 0)
	return err
}

// openPeer starts the WebRTC UDP port and STUN/TURN (turn.go) and makes the box a peer:
// rooms it is invited into are kept in the store and served to whoever connects later.
func (b *box) openPeer(context.Context) error {
	// Where the box's TURN relays and ICE checks may go: the networks of its addresses.
	subnets, err := boxSubnets(b.addrs, b.cfg.WebRTCLoopback)
	if err != nil {
		return err
	}
	b.subnets = subnets
	if b.wnet, err = startWebRTCNet(b.cfg, b.addrs, subnets, b.base); err != nil {
		return err
	}
	b.onClose(func() { b.wnet.Close() })
	b.arch, err = archiver.New(archiver.Options{Store: b.st, Identity: b.id, Logger: b.base, Clock: b.clock, Blobs: b.files,
		Subnets: func() []netip.Prefix { return subnets },
		RTC: rtc.Options{IncludeLoopback: b.cfg.WebRTCLoopback, MDNSResolve: !b.cfg.WebRTCLoopback,
			UDPReadBuffer: udpReadBuffer, UDPMux: b.wnet.mux}})
	return err
}

// openHardware wires the board to the box: the microphone, the owner's claim (its code
// goes to the log and the console), the buttons and the LED.
func (b *box) openHardware(context.Context) error {
	if b.cfg.WAVMic != "" {
		b.brd.Mic = wavMic{path: b.cfg.WAVMic}
		b.brd.Status = append(b.brd.Status, board.FeatureStatus{Feature: "microphone", OK: true, Detail: "a WAV file: " + b.cfg.WAVMic})
	}
	owner, err := openOwner(b.cfg, b.brd, b.logOut, b.base)
	if err != nil {
		return err
	}
	b.owner = owner
	b.hw = newHardware(b.brd, b.arch, b.st, b.files, b.cfg.MaxVoice, b.base)
	b.hw.blink, b.hw.runBlink, b.hw.onLED = b.blink, false, b.deps.onLED
	b.hw.owner = owner
	b.hw.activity = web.NewActivity()
	return nil
}

// openWeb fills the web handler's options; listen adds what depends on the listeners.
func (b *box) openWeb(context.Context) error {
	localToken, err := writeLocalToken(b.cfg.DataDir)
	if err != nil {
		return err
	}
	b.onClose(func() { os.Remove(filepath.Join(b.cfg.DataDir, localTokenFile)) })
	b.webOpts = web.Options{
		Activity:        b.hw.activity,
		LocalToken:      localToken,
		Version:         version,
		CAPEM:           b.cert.CAPEM(),
		CAFingerprint:   b.cert.CAFingerprint(),
		Logger:          b.base,
		Box:             boxAPI{arch: b.arch, store: b.st, blobs: b.files},
		Drop:            web.NewDropBox(web.DropOptions{}),
		Hardware:        hardwareAPI{b.hw},
		ICE:             b.wnet.ice,
		Owner:           b.owner,
		BodyReadTimeout: b.cfg.BodyTimeout,
		Update:          b.deps.updater.api(),
		OwnerBox:        ownerBox{store: b.st, files: b.files, hostname: b.cfg.Hostname, dataDir: b.cfg.DataDir, upd: b.deps.updater},
	}
	var restart func()
	if b.deps.updater != nil {
		restart = b.deps.updater.restart
	}
	b.owner.SetBox(b.cfg.Hostname, restart) // the owner's network settings (web/wifi.go)
	if dir := b.cfg.StaticDir; dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("serve: -static-dir %s is not a directory", dir)
		}
		b.webOpts.Static = os.DirFS(dir)
	}
	return nil
}

// servers are the box's listening HTTP servers (HTTPS first) and its mDNS responder.
type servers struct {
	srvs      []*http.Server
	listeners []net.Listener
	responder *mdns.Responder // nil when mDNS is off
	httpsAddr *net.TCPAddr
	ready     readyInfo
}

// listen opens the HTTPS listener (and the plain-HTTP one), the mDNS responder and the
// servers. nil, nil: ctx ended while starting.
func (b *box) listen(ctx context.Context) (*servers, error) {
	var lc net.ListenConfig
	httpsLn, err := lc.Listen(ctx, "tcp", b.cfg.HTTPSAddr)
	if err != nil {
		if ctx.Err() != nil { // stopped while starting
			return nil, nil
		}
		return nil, fmt.Errorf("serve: HTTPS: %w", err)
	}
	httpsPort := httpsLn.Addr().(*net.TCPAddr).Port
	responder, err := newMDNS(b.cfg, !b.explicitHost, httpsPort, b.base)
	if err != nil {
		httpsLn.Close()
		return nil, fmt.Errorf("serve: %w", err)
	}
	b.addressing(responder, httpsPort)
	s := &servers{
		srvs:      []*http.Server{newServer(web.New(b.webOpts), b.base, "https")},
		listeners: []net.Listener{httpsLn},
		responder: responder,
		httpsAddr: httpsLn.Addr().(*net.TCPAddr),
		ready:     readyInfo{HTTPS: dialAddr(httpsLn.Addr()), CACert: filepath.Join(b.cfg.DataDir, cert.CAFile)},
	}
	s.srvs[0].TLSConfig = b.cert.TLSConfig()
	if b.cfg.HTTPAddr != "" {
		httpLn, err := lc.Listen(ctx, "tcp", b.cfg.HTTPAddr)
		if err != nil {
			httpsLn.Close()
			if ctx.Err() != nil {
				return nil, nil
			}
			return nil, fmt.Errorf("serve: HTTP: %w", err)
		}
		s.srvs = append(s.srvs, newServer(web.NewRedirect(httpsPort, b.webOpts), b.base, "http"))
		s.listeners = append(s.listeners, httpLn)
		s.ready.HTTP = dialAddr(httpLn.Addr())
	}
	return s, nil
}

// addressing tells the web handler the box's names: the addresses phones can use, the
// hosts the API answers (DNS rebinding) and the one plain HTTP redirects to, which the
// certificate covers.
func (b *box) addressing(responder *mdns.Responder, httpsPort int) {
	host, addrs := b.cfg.Hostname, b.addrs
	b.webOpts.Addresses = func() []string { return phoneURLs(responder, host, httpsPort, addrs) }
	b.webOpts.BoxHost = newBoxNames(host, b.alts[1:], addrs).has
	b.webOpts.CanonicalHost = func() string {
		if responder != nil && responder.Name() != "" {
			return responder.Name()
		}
		return host + ".local"
	}
}

// logURLs tells the log where to open the chat and where phones trust the box.
func (b *box) logURLs(s *servers) {
	ready := s.ready
	for _, u := range openURLs(s.httpsAddr, b.cfg.Hostname, b.addrs) {
		b.log.Info("open the chat", "url", u)
	}
	trustURL := "https://" + b.cfg.Hostname + ".local" + portSuffix(ready.HTTPS, 443) + "/trust"
	if ready.HTTP != "" {
		trustURL = "http://" + b.cfg.Hostname + ".local" + portSuffix(ready.HTTP, 80) + "/trust"
	}
	b.log.Info("phones trust the box once they install its CA", "url", trustURL, "ca_fingerprint", b.cert.CAFingerprint())
}

// run serves until ctx ends: the archiver, the hardware, mDNS and the servers under one
// errgroup, and the ready file once all listen.
func (b *box) run(ctx context.Context, s *servers) error {
	// The box's own /healthz where it listens: a new release's trial and the watchdog ask it.
	probe, err := newHealthProbe(s.ready.CACert, s.ready.HTTPS)
	if err != nil {
		for _, ln := range s.listeners {
			ln.Close()
		}
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, srv := range s.srvs {
		// Long requests (the drop box's event streams) end when the box stops.
		srv.BaseContext = func(net.Listener) context.Context { return gctx }
	}
	g.Go(func() error { return b.arch.Run(gctx) })
	g.Go(func() error { return b.hw.Run(gctx) })
	g.Go(func() error { return b.deps.updater.watch(gctx, probe.check) }) // updates.go
	if s.responder != nil {
		g.Go(func() error { return runMDNS(gctx, s.responder, b.base) })
	}
	for i, srv := range s.srvs {
		ln := s.listeners[i]
		g.Go(func() error { return serveHTTP(srv, ln) })
	}
	g.Go(func() error { return shutdown(gctx, s.srvs) })

	if b.cfg.ReadyFile != "" {
		if err := writeReady(b.cfg.ReadyFile, s.ready); err != nil {
			b.log.Error("write ready file", "err", err)
			for _, srv := range s.srvs {
				srv.Close()
			}
			g.Wait()
			return err
		}
		defer os.Remove(b.cfg.ReadyFile)
	}
	// Under systemd (Type=notify): READY=1, then WATCHDOG=1 while the box answers its own
	// /healthz where it listens (notify.go).
	if sd := newNotifier(os.Getenv, b.base); sd != nil {
		g.Go(func() error { return sd.run(gctx, probe.check) })
	}
	err = g.Wait()
	b.log.Info("stopped")
	return err
}

// serveHTTP serves srv on ln until it is shut down (nil).
func serveHTTP(srv *http.Server, ln net.Listener) error {
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "") // certificates come from TLSConfig
	} else {
		err = srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// shutdown waits for ctx to end, then lets open requests finish for shutdownTimeout.
func shutdown(ctx context.Context, srvs []*http.Server) error {
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	for _, srv := range srvs {
		if err := srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
			srv.Close()
		}
	}
	return errors.Join(errs...)
}

func newServer(h http.Handler, log *slog.Logger, name string) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		// Phones that do not trust the CA yet fail every TLS handshake: debug noise.
		ErrorLog: slog.NewLogLogger(log.With("component", name).Handler(), slog.LevelDebug),
	}
}

// readyInfo is the content of the -ready-file. Addresses are ones a client on the same
// machine can dial: a wildcard listener (":8443") is reported as "127.0.0.1:8443".
type readyInfo struct {
	HTTPS  string `json:"https"`          // host:port of the HTTPS listener
	HTTP   string `json:"http,omitempty"` // host:port of the HTTP listener, absent when disabled
	CACert string `json:"ca_cert"`        // path of the CA certificate (PEM)
}

// dialAddr turns a listening address into one a local client can connect to.
func dialAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok || ip.Unmap().IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port))
	}
	return net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(ta.Port))
}

func writeReady(path string, info readyInfo) error {
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if err := atomicfile.WriteBytes(path, 0o644, append(b, '\n')); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}

// openURLs lists the addresses a person can type: localhost, <hostname>.local and every
// LAN address when listening on all interfaces; else just the listening address.
func openURLs(ln *net.TCPAddr, hostname string, lan []netip.Addr) []string {
	port := ""
	if ln.Port != 443 {
		port = ":" + strconv.Itoa(ln.Port)
	}
	if ip, ok := netip.AddrFromSlice(ln.IP); ok && !ip.Unmap().IsUnspecified() {
		return []string{"https://" + net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(ln.Port))}
	}
	urls := []string{"https://localhost" + port, "https://" + hostname + ".local" + port}
	for _, a := range lan {
		h := a.String()
		if a.Is6() {
			h = "[" + h + "]"
		}
		urls = append(urls, "https://"+h+port)
	}
	return urls
}

// portSuffix returns ":port" of a listening address, or "" when it is def.
func portSuffix(addr string, def int) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil || p == strconv.Itoa(def) {
		return ""
	}
	return ":" + p
}

// flooredClock is now, but never before floor (the build time): a box that boots with no
// clock (1970) still mints certificates phones, which know the date, accept.
func flooredClock(now func() time.Time, floor time.Time) func() time.Time {
	return func() time.Time {
		if t := now(); t.After(floor) {
			return t
		}
		return floor
	}
}
