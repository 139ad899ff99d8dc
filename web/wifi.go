package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chattorrent/chattorrent/store/atomicfile"
)

// The owner's network settings: the box's name and its Wi-Fi access point (name,
// WPA2 passphrase, country). The box runs as an unprivileged, sandboxed user and cannot
// change the system's Wi-Fi or hostname itself: it validates the owner's choice and writes
// it atomically to a small file in its data directory, where a root-owned systemd path unit
// (deploy/packaging/chattorrent-settings.path) sees it and applies it with
// chattorrent-hotspot and hostnamectl after validating it again (docs/SECURITY.md,
// "Settings"). The box takes a new name itself at its next start (firmware/boxname.go),
// which it starts at once.

// Files in the data directory the root side reads (mode 0600, written atomically).
const (
	// WiFiFile holds exactly three lines: SSID=, PASSPHRASE=, COUNTRY=.
	WiFiFile = "wifi.conf"
	// BoxNameFile holds the box's name (a DNS label) and a newline.
	BoxNameFile = "boxname"
)

// The limits the page, the box and the root-side applier all check.
const (
	MaxSSIDBytes      = 32 // IEEE 802.11: an SSID is 0-32 octets (0 is not allowed here)
	MinPassphrase     = 8  // WPA2-PSK: 8-63 printable ASCII characters
	MaxPassphrase     = 63
	MaxBoxNameBytes   = 63 // one DNS label
	maxNetworkRequest = 1 << 10
)

// Errors of the validators; the API answers each with its own code (bad-ssid, …).
var (
	ErrBadSSID       = errors.New("network: the Wi-Fi name must be 1 to 32 bytes of UTF-8, without control characters")
	ErrBadPassphrase = errors.New("network: the Wi-Fi passphrase must be 8 to 63 printable ASCII characters")
	ErrBadCountry    = errors.New("network: the Wi-Fi country must be two capital letters (ES, GB, US…)")
	ErrBadBoxName    = errors.New("network: the box's name must be 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'")
)

// reservedBoxNames are names the box cannot take: the generic alias several boxes answer
// (its certificate cannot be limited to one box) and localhost.
var reservedBoxNames = []string{"chattorrent", "localhost"}

// ValidSSID checks a Wi-Fi network name: 1-32 bytes of valid UTF-8 with no control
// character (no newline, tab, NUL, DEL or C1 code).
func ValidSSID(s string) error {
	if len(s) < 1 || len(s) > MaxSSIDBytes || !utf8.ValidString(s) {
		return ErrBadSSID
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return ErrBadSSID
	}
	return nil
}

// ValidPassphrase checks a WPA2 passphrase: 8-63 characters from ' ' to '~'.
func ValidPassphrase(s string) error {
	if len(s) < MinPassphrase || len(s) > MaxPassphrase {
		return ErrBadPassphrase
	}
	for i := range len(s) {
		if s[i] < ' ' || s[i] > '~' {
			return ErrBadPassphrase
		}
	}
	return nil
}

// ValidCountry checks a Wi-Fi country: two letters A-Z (ISO 3166-1 alpha-2, as the
// kernel's regulatory database and raspi-config take it).
func ValidCountry(s string) error {
	if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
		return ErrBadCountry
	}
	return nil
}

// ValidBoxName checks the box's name: one lowercase DNS label (1-63 of a-z, 0-9, '-', not
// starting or ending with '-'), not a reserved one. The box answers <name>.local.
func ValidBoxName(s string) error {
	if len(s) < 1 || len(s) > MaxBoxNameBytes || s[0] == '-' || s[len(s)-1] == '-' {
		return ErrBadBoxName
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return ErrBadBoxName
		}
	}
	for _, r := range reservedBoxNames {
		if s == r {
			return ErrBadBoxName
		}
	}
	return nil
}

// WiFi is the box's access point as the owner set it on the page.
type WiFi struct {
	SSID       string
	Passphrase string
	Country    string
}

func (w WiFi) valid() error {
	return errors.Join(ValidSSID(w.SSID), ValidPassphrase(w.Passphrase), ValidCountry(w.Country))
}

// encode is WiFiFile's content: the three lines the root-side applier parses.
func (w WiFi) encode() []byte {
	return fmt.Appendf(nil, "SSID=%s\nPASSPHRASE=%s\nCOUNTRY=%s\n", w.SSID, w.Passphrase, w.Country)
}

// ReadWiFi reads WiFiFile from dir; a missing file is the zero WiFi and no error.
func ReadWiFi(dir string) (WiFi, error) {
	b, err := os.ReadFile(filepath.Join(dir, WiFiFile))
	if errors.Is(err, fs.ErrNotExist) {
		return WiFi{}, nil
	}
	if err != nil {
		return WiFi{}, fmt.Errorf("network: %w", err)
	}
	return ParseWiFi(b)
}

// ParseWiFi parses and validates WiFiFile's content (a backup's copy, too).
func ParseWiFi(b []byte) (WiFi, error) {
	var w WiFi
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "SSID":
			w.SSID = v
		case "PASSPHRASE":
			w.Passphrase = v
		case "COUNTRY":
			w.Country = v
		}
	}
	if err := w.valid(); err != nil {
		return WiFi{}, fmt.Errorf("network: %s: %w", WiFiFile, err)
	}
	return w, nil
}

// WriteWiFi validates w and writes it to dir's WiFiFile atomically.
func WriteWiFi(dir string, w WiFi) error {
	if err := w.valid(); err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, WiFiFile), 0o600, w.encode()); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

// ReadBoxName reads the name the owner gave the box from dir's BoxNameFile: "" when the
// owner never named it.
func ReadBoxName(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, BoxNameFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("network: %w", err)
	}
	return ParseBoxName(b)
}

// ParseBoxName parses and validates BoxNameFile's content (a backup's copy, too).
func ParseBoxName(b []byte) (string, error) {
	name := strings.TrimSuffix(string(b), "\n")
	if err := ValidBoxName(name); err != nil {
		return "", fmt.Errorf("network: %s: %w", BoxNameFile, err)
	}
	return name, nil
}

// WriteBoxName validates name and writes it to dir's BoxNameFile atomically.
func WriteBoxName(dir, name string) error {
	if err := ValidBoxName(name); err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, BoxNameFile), 0o600, []byte(name+"\n")); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

// SetBox tells the owner's API the name the box runs under and how it restarts (nil: it
// cannot, and a new name waits for the next start).
func (o *Owner) SetBox(name string, restart func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.boxName, o.restart = name, restart
}

func (o *Owner) box() (string, func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.boxName, o.restart
}

// networkView is GET /api/owner/network: never the passphrase itself.
type networkView struct {
	BoxName       string `json:"box_name"`      // the name the box answers to now
	BoxNameNext   string `json:"box_name_next"` // a new name taken at the next start, or ""
	SSID          string `json:"ssid"`          // "" until the owner sets the Wi-Fi here
	Country       string `json:"country"`
	PassphraseSet bool   `json:"passphrase_set"`
	Restarting    bool   `json:"restarting,omitempty"` // the box restarts now to take the new name
}

type networkRequest struct {
	BoxName    string `json:"box_name"`   // "" or the same: unchanged
	SSID       string `json:"ssid"`       // with country (and a passphrase the first time): the Wi-Fi
	Passphrase string `json:"passphrase"` // "": keep the one set before
	Country    string `json:"country"`
}

func (o Options) networkView() (networkView, error) {
	dir := o.Owner.opts.Dir
	running, _ := o.Owner.box()
	v := networkView{BoxName: running}
	next, err := ReadBoxName(dir)
	if err != nil {
		return v, err
	}
	if next != running {
		v.BoxNameNext = next
	}
	w, err := ReadWiFi(dir)
	if err != nil {
		return v, err
	}
	v.SSID, v.Country, v.PassphraseSet = w.SSID, w.Country, w.Passphrase != ""
	return v, nil
}

func (o Options) apiNetwork(w http.ResponseWriter, r *http.Request) {
	v, err := o.networkView()
	if err != nil {
		o.Logger.Error("network settings", "err", err)
	}
	writeJSON(w, http.StatusOK, v)
}

func (o Options) apiPutNetwork(w http.ResponseWriter, r *http.Request) {
	body, err := o.readBody(w, r, maxNetworkRequest)
	if o.slowBody(w, r, err) {
		return
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		fail(w, http.StatusRequestEntityTooLarge, "too-big", "the request is too big")
		return
	}
	var req networkRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err != nil || dec.Decode(&req) != nil {
		fail(w, http.StatusBadRequest, "bad-request", `send {"box_name", "ssid", "passphrase", "country"}`)
		return
	}
	dir := o.Owner.opts.Dir
	running, restart := o.Owner.box()
	newName := req.BoxName != "" && req.BoxName != running
	if newName {
		if ValidBoxName(req.BoxName) != nil {
			fail(w, http.StatusBadRequest, "bad-box-name", "the box's name must be 1 to 63 letters a-z, digits and '-' (not first or last), and not \"chattorrent\"")
			return
		}
	}
	setWiFi := req.SSID != "" || req.Passphrase != "" || req.Country != ""
	var wifi WiFi
	if setWiFi {
		cur, err := ReadWiFi(dir)
		if err != nil {
			o.Logger.Warn("network settings: the saved Wi-Fi is unreadable; a new passphrase is needed", "err", err)
		}
		wifi = WiFi{SSID: req.SSID, Passphrase: req.Passphrase, Country: req.Country}
		if wifi.Passphrase == "" {
			wifi.Passphrase = cur.Passphrase
		}
		switch {
		case ValidSSID(wifi.SSID) != nil:
			fail(w, http.StatusBadRequest, "bad-ssid", "the Wi-Fi name must be 1 to 32 bytes, without control characters")
			return
		case wifi.Passphrase == "":
			fail(w, http.StatusBadRequest, "need-passphrase", "set a Wi-Fi passphrase (8 to 63 characters)")
			return
		case ValidPassphrase(wifi.Passphrase) != nil:
			fail(w, http.StatusBadRequest, "bad-passphrase", "the Wi-Fi passphrase must be 8 to 63 characters, printable ASCII only (no accents or emoji)")
			return
		case ValidCountry(wifi.Country) != nil:
			fail(w, http.StatusBadRequest, "bad-country", "the Wi-Fi country must be two capital letters, such as ES")
			return
		}
		setWiFi = wifi != cur
	}
	if setWiFi {
		if err := WriteWiFi(dir, wifi); err != nil {
			o.Logger.Error("network settings", "err", err)
			fail(w, http.StatusInternalServerError, "failed", "the box could not save the Wi-Fi settings")
			return
		}
		o.Logger.Info("the owner set the Wi-Fi; the system applies it now (chattorrent-settings.path)", "ssid", wifi.SSID, "country", wifi.Country)
	}
	if newName {
		if err := WriteBoxName(dir, req.BoxName); err != nil {
			o.Logger.Error("network settings", "err", err)
			fail(w, http.StatusInternalServerError, "failed", "the box could not save its name")
			return
		}
		o.Logger.Warn("the owner renamed the box; it takes the name at its next start", "from", running+".local", "to", req.BoxName+".local")
	}
	v, err := o.networkView()
	if err != nil {
		o.Logger.Error("network settings", "err", err)
	}
	if newName && restart != nil {
		v.Restarting = true
		writeJSON(w, http.StatusOK, v)
		restart()
		return
	}
	writeJSON(w, http.StatusOK, v)
}
