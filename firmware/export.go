package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/chattorrent/chattorrent/net/cert"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/store/atomicfile"
	"github.com/chattorrent/chattorrent/store/blobs"
	"github.com/chattorrent/chattorrent/store/bundle"
	"github.com/chattorrent/chattorrent/web"
)

var reExportRoom = regexp.MustCompile(`^[0-9a-f]{32}$`)

// exportCmd runs "chattorrent export [-data-dir D] [-https-addr A] [-o DIR] [ROOM-ID...]":
// every room the box keeps (or those named) as <name>_<room id>_history.zip in DIR, the
// zip the web page offers (history.json, verifiable, plus the files the box holds). While
// the service runs it holds the store, so the export asks it over HTTPS on loopback
// (trusting only the box's CA); otherwise it reads the data directory itself.
func exportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newEnvFlags("chattorrent export", os.LookupEnv, stderr)
	var dataDir, httpsAddr string
	fs.dataDir(&dataDir)
	fs.String(&httpsAddr, "https-addr", "CHATTORRENT_HTTPS_ADDR", ":8443", "the running appliance's HTTPS address (env CHATTORRENT_HTTPS_ADDR)")
	out := fs.FlagSet.String("o", ".", "directory the zips are written to")
	if err := fs.parse(args); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	want := fs.Args()
	for _, id := range want {
		if !reExportRoom.MatchString(id) {
			return usageError{err: fmt.Errorf("export: %q is not a room id (32 lowercase hex characters)", id)}
		}
	}
	if fi, err := os.Stat(*out); err != nil || !fi.IsDir() {
		return fmt.Errorf("export: -o %s is not a directory", *out)
	}

	var src exportSource
	st, err := store.Open(filepath.Join(dataDir, "store"), store.Options{Logger: slog.New(slog.DiscardHandler)})
	switch {
	case errors.Is(err, store.ErrLocked):
		src, err = newRemoteExport(dataDir, httpsAddr)
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, "the appliance is running: exporting through it")
	case err != nil:
		return fmt.Errorf("export: %w", err)
	default:
		defer st.Close()
		var files bundle.Files
		if _, err := os.Stat(filepath.Join(dataDir, "files")); err == nil {
			if b, err := blobs.New(filepath.Join(dataDir, "files"), 0); err == nil {
				files = b
			}
		}
		src = localExport{st: st, files: files}
	}

	rooms, err := src.rooms(ctx)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	n := 0
	for _, r := range rooms {
		if len(want) > 0 && !slices.Contains(want, r.ID) {
			continue
		}
		name := filepath.Join(*out, exportFileName(r))
		if err := atomicfile.WriteFile(name, 0o600, func(w io.Writer) error { return src.zip(ctx, r.ID, w) }); err != nil {
			return fmt.Errorf("export %s: %w", r.ID, err)
		}
		fmt.Fprintln(stdout, name)
		n++
	}
	if n < len(want) {
		return fmt.Errorf("export: the box keeps %d of the %d rooms named", n, len(want))
	}
	if n == 0 {
		fmt.Fprintln(stderr, "the box keeps no room yet")
	}
	return nil
}

type exportRoom struct{ ID, Name string }

// exportFileName is the zip's name for a room: the room's whole id, never a prefix, so two
// rooms (say two "Clase" rooms whose ids share their first 8 hex characters) never write
// the same file. Only the same room exported again replaces its own earlier zip.
func exportFileName(r exportRoom) string {
	return torrent.SafeFileName(r.Name) + "_" + r.ID + "_history.zip"
}

type exportSource interface {
	rooms(ctx context.Context) ([]exportRoom, error)
	zip(ctx context.Context, id string, w io.Writer) error
}

type localExport struct {
	st    *store.Store
	files bundle.Files
}

func (l localExport) rooms(context.Context) ([]exportRoom, error) {
	rs, err := l.st.Rooms()
	if err != nil {
		return nil, err
	}
	out := make([]exportRoom, len(rs))
	for i, r := range rs {
		out[i] = exportRoom{ID: r.ID, Name: cmpOr(r.Name, r.ID)}
	}
	return out, nil
}

// zip streams the room's zip as the running box's history.zip does (bundle.WriteStream).
func (l localExport) zip(_ context.Context, id string, w io.Writer) error {
	h, err := l.st.Stream(id)
	if err != nil {
		return err
	}
	return bundle.WriteStream(w, h, l.files, time.Now())
}

// remoteExport asks the running appliance on loopback.
type remoteExport struct {
	client *http.Client
	base   string
	local  string // the running box's local token (web.Options.LocalToken)
}

func newRemoteExport(dataDir, httpsAddr string) (remoteExport, error) {
	caPEM, err := os.ReadFile(filepath.Join(dataDir, cert.CAFile))
	if err != nil {
		return remoteExport{}, fmt.Errorf("export: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return remoteExport{}, errors.New("export: no certificate in " + filepath.Join(dataDir, cert.CAFile))
	}
	_, port, err := net.SplitHostPort(httpsAddr)
	if err != nil {
		return remoteExport{}, fmt.Errorf("export: -https-addr: %w", err)
	}
	// The box shows every room only to a command that can read its data directory.
	local, err := os.ReadFile(filepath.Join(dataDir, localTokenFile))
	if err != nil {
		return remoteExport{}, fmt.Errorf("export: the running box's local token: %w", err)
	}
	return remoteExport{
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}},
		base:   "https://" + net.JoinHostPort("127.0.0.1", port),
		local:  strings.TrimSpace(string(local)),
	}, nil
}

// exportRetries and exportRetryWait: while the running box serves
// web.MaxConcurrentExports downloads already it answers 503 busy; the command waits for a
// place, up to about a minute, rather than fail.
var (
	exportRetries   = 30
	exportRetryWait = 2 * time.Second
)

func (r remoteExport) get(ctx context.Context, path string) (*http.Response, error) {
	for try := 0; ; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set(web.LocalHeader, r.local)
		resp, err := r.client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || try >= exportRetries {
			return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(exportRetryWait):
		}
	}
}

func (r remoteExport) rooms(ctx context.Context) ([]exportRoom, error) {
	resp, err := r.get(ctx, "/api/rooms")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rs []exportRoom
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&rs); err != nil {
		return nil, fmt.Errorf("rooms: %w", err)
	}
	out := rs[:0]
	for _, x := range rs {
		if reExportRoom.MatchString(x.ID) {
			x.Name = cmpOr(x.Name, x.ID)
			out = append(out, x)
		}
	}
	return out, nil
}

func (r remoteExport) zip(ctx context.Context, id string, w io.Writer) error {
	resp, err := r.get(ctx, "/api/rooms/"+id+"/history.zip")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// localTokenFile holds, while the box runs, the secret that lets a command on the box
// list and export every room through it (web.Options.LocalToken); mode 0600.
const localTokenFile = "local-token"

// writeLocalToken makes a new local token and writes it into dataDir.
func writeLocalToken(dataDir string) (string, error) {
	var b [32]byte
	rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	err := atomicfile.WriteBytes(filepath.Join(dataDir, localTokenFile), 0o600, []byte(tok+"\n"))
	if err != nil {
		return "", fmt.Errorf("local token: %w", err)
	}
	return tok, nil
}
