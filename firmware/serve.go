package main

import (
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
	"github.com/chattorrent/chattorrent/net/pieces"
	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/web"
)

// shutdownTimeout bounds how long open requests may take to finish on exit.
const shutdownTimeout = 5 * time.Second

// serve runs the appliance until ctx is cancelled. Cancellation is a clean exit (nil).
func serve(ctx context.Context, cfg Config, logOut io.Writer) error {
	base := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))
	log := base.With("component", "firmware")
	log.Info("starting", "version", version, "commit", commit, "data_dir", cfg.DataDir)

	// The board first: its LED says "starting" while the store opens.
	cfg.Board.Logger = base
	brd := cfg.board
	if brd == nil {
		var err error
		brd, err = board.Open(ctx, cfg.Board)
		if err != nil {
			return err
		}
		defer brd.Close()
	}
	blink, stopLED := startLED(ctx, brd.LED, base)
	defer stopLED() // before the board closes: the LED is left dark

	addrs, err := cert.InterfaceAddrs()
	if err != nil {
		return err
	}
	// The box's name: --hostname, else chattorrent-<6 hex> from its identity key.
	explicitHost := cfg.Hostname != ""
	host, id, err := boxHostname(cfg.DataDir, cfg.Hostname)
	if err != nil {
		return err
	}
	cfg.Hostname = host
	logHostname(log, cfg.Hostname, explicitHost)
	// The certificate covers every name mDNS may take on a clash (name-2 … name-16).
	alts, err := mdns.Candidates(cfg.Hostname)
	if err != nil {
		return fmt.Errorf("serve: --hostname: %w", err)
	}
	box, err := cert.Load(cfg.DataDir, cert.Options{
		Hostname:     cfg.Hostname,
		AltHostnames: alts[1:],
		Addrs:        func() ([]netip.Addr, error) { return addrs, nil },
		Logger:       base,
	})
	if err != nil {
		return err
	}

	log.Info("identity", "name", id.Name, "fingerprint", id.Fingerprint())

	// The box as a peer: rooms it is invited into are kept in the store and served to
	// whoever connects later.
	// Members' phones correct a box that booted with a stale time (archiver/clock.go); the
	// build time is a floor the system time cannot honestly be under.
	clock := archiver.NewClock(archiver.ClockOptions{Logger: base, NotBefore: builtAt()})
	setMemoryLimit(log)
	st, err := store.Open(filepath.Join(cfg.DataDir, "store"), store.Options{Logger: base, Now: clock.Now,
		Limits: store.Limits{StoreBytes: cfg.StoreBudget}})
	if err != nil {
		return err
	}
	defer st.Close()
	releaseMemory()
	blobs, err := pieces.NewBlobs(filepath.Join(cfg.DataDir, "files"), 0)
	if err != nil {
		return err
	}
	// Where the box's TURN relays and ICE checks may go: the networks of its addresses.
	subnets, err := boxSubnets(addrs, cfg.WebRTCLoopback)
	if err != nil {
		return err
	}
	wnet, err := startWebRTCNet(cfg, addrs, subnets, base) // the WebRTC UDP port, STUN/TURN (turn.go)
	if err != nil {
		return err
	}
	defer wnet.Close()
	arch, err := archiver.New(archiver.Options{Store: st, Identity: id, Logger: base, Clock: clock, Blobs: blobs,
		Subnets: func() []netip.Prefix { return subnets },
		RTC:     rtc.Options{IncludeLoopback: cfg.WebRTCLoopback, MDNSResolve: !cfg.WebRTCLoopback, UDPReadBuffer: 4 << 20, UDPMux: wnet.mux}})
	if err != nil {
		return err
	}

	if cfg.WAVMic != "" {
		brd.Mic = wavMic{path: cfg.WAVMic}
		brd.Status = append(brd.Status, board.FeatureStatus{Feature: "microphone", OK: true, Detail: "a WAV file: " + cfg.WAVMic})
	}
	owner, err := openOwner(cfg, brd, logOut, base) // the claim code goes to the log and the console
	if err != nil {
		return err
	}
	hw := newHardware(brd, arch, st, blobs, cfg.MaxVoice, base)
	hw.blink, hw.runBlink, hw.onLED = blink, false, cfg.onLED
	hw.owner = owner
	hw.activity = web.NewActivity()

	localToken, err := writeLocalToken(cfg.DataDir)
	if err != nil {
		return err
	}
	defer os.Remove(filepath.Join(cfg.DataDir, localTokenFile))
	webOpts := web.Options{
		Activity:        hw.activity,
		LocalToken:      localToken,
		Version:         version,
		CAPEM:           box.CAPEM(),
		CAFingerprint:   box.CAFingerprint(),
		Logger:          base,
		Box:             boxAPI{arch: arch, store: st, blobs: blobs},
		Drop:            web.NewDropBox(web.DropOptions{}),
		Hardware:        hardwareAPI{hw},
		ICE:             wnet.ice,
		Owner:           owner,
		BodyReadTimeout: cfg.BodyTimeout,
	}
	if cfg.StaticDir != "" {
		if fi, err := os.Stat(cfg.StaticDir); err != nil || !fi.IsDir() {
			return fmt.Errorf("serve: -static-dir %s is not a directory", cfg.StaticDir)
		}
		webOpts.Static = os.DirFS(cfg.StaticDir)
	}

	var lc net.ListenConfig
	httpsLn, err := lc.Listen(ctx, "tcp", cfg.HTTPSAddr)
	if err != nil {
		if ctx.Err() != nil { // stopped while starting
			return nil
		}
		return fmt.Errorf("serve: HTTPS: %w", err)
	}
	httpsPort := httpsLn.Addr().(*net.TCPAddr).Port
	responder, err := newMDNS(cfg, !explicitHost, httpsPort, base)
	if err != nil {
		httpsLn.Close()
		return fmt.Errorf("serve: %w", err)
	}
	webOpts.Addresses = func() []string { return phoneURLs(responder, cfg.Hostname, httpsPort, addrs) }
	// The API answers only requests addressed to the box (DNS rebinding); the plain-HTTP
	// side sends the generic name to the one the box holds, which its certificate covers.
	names := newBoxNames(cfg.Hostname, alts[1:], addrs)
	webOpts.BoxHost = names.has
	webOpts.CanonicalHost = func() string {
		if responder != nil && responder.Name() != "" {
			return responder.Name()
		}
		return cfg.Hostname + ".local"
	}
	servers := []*http.Server{newServer(web.New(webOpts), base, "https")}
	servers[0].TLSConfig = box.TLSConfig()
	listeners := []net.Listener{httpsLn}

	ready := readyInfo{HTTPS: dialAddr(httpsLn.Addr()), CACert: filepath.Join(cfg.DataDir, cert.CAFile)}
	if cfg.HTTPAddr != "" {
		httpLn, err := lc.Listen(ctx, "tcp", cfg.HTTPAddr)
		if err != nil {
			httpsLn.Close()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("serve: HTTP: %w", err)
		}
		servers = append(servers, newServer(web.NewRedirect(httpsPort, webOpts), base, "http"))
		listeners = append(listeners, httpLn)
		ready.HTTP = dialAddr(httpLn.Addr())
	}

	for _, u := range openURLs(httpsLn.Addr().(*net.TCPAddr), cfg.Hostname, addrs) {
		log.Info("open the chat", "url", u)
	}
	trustURL := "https://" + cfg.Hostname + ".local" + portSuffix(ready.HTTPS, 443) + "/trust"
	if ready.HTTP != "" {
		trustURL = "http://" + cfg.Hostname + ".local" + portSuffix(ready.HTTP, 80) + "/trust"
	}
	log.Info("phones trust the box once they install its CA", "url", trustURL, "ca_fingerprint", box.CAFingerprint())

	g, gctx := errgroup.WithContext(ctx)
	for _, srv := range servers {
		// Long requests (the drop box's event streams) end when the box stops.
		srv.BaseContext = func(net.Listener) context.Context { return gctx }
	}
	g.Go(func() error { return arch.Run(gctx) })
	g.Go(func() error { return hw.Run(gctx) })
	if responder != nil {
		g.Go(func() error { return runMDNS(gctx, responder, base) })
	}
	for i, srv := range servers {
		ln := listeners[i]
		g.Go(func() error {
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
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		var errs []error
		for _, srv := range servers {
			if err := srv.Shutdown(sctx); err != nil {
				errs = append(errs, fmt.Errorf("shutdown: %w", err))
				srv.Close()
			}
		}
		return errors.Join(errs...)
	})

	if cfg.ReadyFile != "" {
		if err := writeReady(cfg.ReadyFile, ready); err != nil {
			log.Error("write ready file", "err", err)
			for _, srv := range servers {
				srv.Close()
			}
			g.Wait()
			return err
		}
		defer os.Remove(cfg.ReadyFile)
	}
	// Under systemd (Type=notify): READY=1, then WATCHDOG=1 while /healthz answers.
	if sd := newNotifier(os.Getenv, base); sd != nil {
		hc := cfg
		hc.HTTPSAddr = ready.HTTPS
		g.Go(func() error {
			return sd.run(gctx, func(c context.Context) error { return healthcheck(c, hc, io.Discard) })
		})
	}

	err = g.Wait()
	log.Info("stopped")
	return err
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
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
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
