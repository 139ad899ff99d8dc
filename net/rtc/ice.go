package rtc

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"golang.org/x/sys/cpu"

	"github.com/chattorrent/chattorrent/net/pionlog"
)

// UDPMux is the box's one UDP socket for WebRTC: every peer connection of an API made
// with Options.UDPMux shares it (ICE demultiplexes by username fragment), so a firewall
// needs one port open and one large receive buffer serves every peer.
type UDPMux struct {
	ice.UDPMux
	conn *net.UDPConn
	// ReadBuffer is the receive buffer the kernel granted, in bytes (Linux reports twice
	// the size asked for); 0 when unknown.
	ReadBuffer int
}

// Port returns the UDP port the mux listens on.
func (m *UDPMux) Port() int { return m.conn.LocalAddr().(*net.UDPAddr).Port }

// ListenUDPMux opens one UDP socket on every IPv4 address of the host at port (0: an
// ephemeral port) with a receive buffer of readBuffer bytes (0 keeps the OS default) and
// returns it as an ICE UDP mux. Close it after the peer connections that use it.
func ListenUDPMux(port, readBuffer int, log *slog.Logger) (*UDPMux, error) {
	log = logger(log)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: port})
	if err != nil {
		return nil, fmt.Errorf("rtc: WebRTC UDP port %d: %w", port, err)
	}
	m := &UDPMux{conn: conn}
	if readBuffer > 0 {
		m.ReadBuffer = setReadBuffer(conn, readBuffer, log)
	}
	// An unspecified address: the mux lists the host's interface addresses each time a
	// peer connection gathers, so addresses that come and go (hotspot, DHCP) are followed.
	m.UDPMux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn, Logger: pionlog.New(log).NewLogger("ice")})
	log.Info("WebRTC UDP port", "port", m.Port(), "receive_buffer", m.ReadBuffer)
	return m, nil
}

// setReadBuffer asks for a receive buffer of size bytes and returns what the kernel
// granted. Linux caps SO_RCVBUF at net.core.rmem_max (208 KiB by default, on a Pi too)
// without an error, so a plain SetReadBuffer(4 MiB) silently gets 416 KiB; as root (or
// with CAP_NET_ADMIN) SO_RCVBUFFORCE is not capped and is tried first.
func setReadBuffer(c *net.UDPConn, size int, log *slog.Logger) int {
	if !forceReadBuffer(c, size) {
		if err := c.SetReadBuffer(size); err != nil {
			log.Warn("UDP receive buffer not set", "bytes", size, "err", err)
		}
	}
	got := readBufferSize(c)
	if got > 0 && got < size {
		log.Warn("UDP receive buffer smaller than asked: raise net.core.rmem_max or run with CAP_NET_ADMIN",
			"asked", size, "granted", got)
	}
	return got
}

// ChaCha20 preference (PERFORMANCE.md): on a CPU without AES instructions (a Pi Zero,
// 1, 2, 3 or 4: their ARM cores lack the crypto extensions or Raspberry Pi OS's parts do
// not expose them), AES-GCM in Go runs in software and costs several times what
// ChaCha20-Poly1305 does; with AES instructions AES-GCM is faster. pion/dtls implements
// both, and Chromium offers both for DTLS.
const (
	CipherAuto   = ""       // by the CPU: ChaCha20 first without AES instructions
	CipherChaCha = "chacha" // ChaCha20-Poly1305 first
	CipherAES    = "aes"    // pion's defaults (AES-128-GCM first)
)

// hasAESHardware reports whether this CPU has AES instructions Go's crypto uses.
func hasAESHardware() bool {
	switch runtime.GOARCH {
	case "amd64", "386":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESGCM
	case "ppc64le", "ppc64":
		return true // POWER8 and later have vcipher, which Go's AES-GCM uses
	default: // arm (32-bit: Go has no AES assembly for it), riscv64, mips…
		return false
	}
}

// dtlsCipherSuites returns the DTLS cipher suites in order of preference for pref on a
// CPU that has (or lacks) AES instructions, or nil for pion's defaults.
//
// Which side's order counts: the DTLS server picks from the client's list, pion in the
// client's order (BoringSSL too, Chromium's DTLS stack, unless told otherwise). The box
// answers (rtc.Answer) and an answering pion is the DTLS client, so its order is the
// one Chromium sees.
func dtlsCipherSuites(pref string, aesHW bool) ([]dtls.CipherSuiteID, error) {
	switch pref {
	case CipherAES:
		return nil, nil
	case CipherAuto:
		if aesHW {
			return nil, nil
		}
	case CipherChaCha:
	default:
		return nil, fmt.Errorf("rtc: DTLS cipher preference %q: want %q, %q or %q", pref, CipherAuto, CipherChaCha, CipherAES)
	}
	return []dtls.CipherSuiteID{
		dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		dtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		dtls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	}, nil
}

// DTLSCipherOrder describes, for logs, the order NewAPI uses on this CPU for pref.
func DTLSCipherOrder(pref string) string {
	s, err := dtlsCipherSuites(pref, hasAESHardware())
	switch {
	case err != nil:
		return err.Error()
	case s == nil:
		return "AES-128-GCM first (AES instructions: " + strconv.FormatBool(hasAESHardware()) + ")"
	default:
		return "ChaCha20-Poly1305 first (AES instructions: " + strconv.FormatBool(hasAESHardware()) + ")"
	}
}
