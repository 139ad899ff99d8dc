// Package rtc carries a room's history between two peers over one WebRTC DataChannel:
// the pion peer-connection setup (non-trickle offer/answer, no STUN: offline LAN), the
// DataChannel message codec of PROTOCOL.md §2, and Session, the sync protocol for one room
// on one channel.
package rtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/net/pionlog"
)

// Label is the label of the one DataChannel a ChatTorrent connection uses.
const Label = "chattorrent"

// maxFrame is the largest SCTP message this side accepts (advertised in the SDP as
// a=max-message-size). Text messages above MaxMessage are still dropped; the margin is
// for binary file pieces.
const maxFrame = 1 << 20

// Options configure the WebRTC stack once, through pion's SettingEngine. Data channels are
// always detached (read and written as messages by DataChannelConn, not by callbacks).
type Options struct {
	// IncludeLoopback gathers 127.0.0.1 / ::1 candidates. Off by default: only tests and a
	// single-host setup need it.
	IncludeLoopback bool
	// MDNS hides host addresses behind .local names and resolves the peer's
	// (ice.MulticastDNSModeQueryAndGather). Off by default (ice.MulticastDNSModeDisabled):
	// raw addresses.
	MDNS bool
	// MDNSResolve resolves the peer's .local candidates (browsers hide their addresses behind
	// them) while offering this side's raw addresses (ice.MulticastDNSModeQueryOnly): what
	// the appliance wants on a LAN. Ignored when MDNS is set.
	MDNSResolve bool
	// Net is the network pion uses: a pion vnet in tests; nil means the real one.
	Net transport.Net
	// UDPReadBuffer is the socket receive buffer asked for on each UDP socket pion opens,
	// in bytes (4 MiB avoids receive drops at full speed); 0 keeps the OS default.
	UDPReadBuffer int
	// UDPMux, when set, carries every peer connection's ICE traffic on its one UDP socket
	// (ListenUDPMux) instead of a socket per connection. The caller closes it.
	UDPMux *UDPMux
	// DTLSCipher is CipherAuto (ChaCha20-Poly1305 first on a CPU without AES
	// instructions), CipherChaCha or CipherAES.
	DTLSCipher string
	// Logger receives this package's logs; nil means slog.Default().
	Logger *slog.Logger
}

// NewAPI returns a pion API configured from opts.
func NewAPI(opts Options) (*webrtc.API, error) {
	var se webrtc.SettingEngine
	se.LoggerFactory = pionlog.New(logger(opts.Logger)) // pion's ICE, DTLS and SCTP logs, through slog
	se.DetachDataChannels()
	se.SetIncludeLoopbackCandidate(opts.IncludeLoopback)
	switch {
	case opts.MDNS:
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryAndGather)
	case opts.MDNSResolve:
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryOnly)
	default:
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	se.SetSCTPMaxMessageSize(maxFrame)
	suites, err := dtlsCipherSuites(opts.DTLSCipher, hasAESHardware())
	if err != nil {
		return nil, err
	}
	if suites != nil {
		se.SetDTLSCipherSuites(suites...)
	}
	if opts.UDPMux != nil {
		se.SetICEUDPMux(opts.UDPMux)
	}
	n := opts.Net
	if opts.UDPReadBuffer > 0 {
		if n == nil {
			std, err := stdnet.NewNet()
			if err != nil {
				return nil, fmt.Errorf("rtc: network: %w", err)
			}
			n = std
		}
		n = &bufferedNet{Net: n, size: opts.UDPReadBuffer, log: logger(opts.Logger)}
	}
	if n != nil {
		se.SetNet(n)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se)), nil
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		l = slog.Default()
	}
	return l.With("component", "rtc")
}

// bufferedNet asks for a larger receive buffer on every UDP socket pion opens.
type bufferedNet struct {
	transport.Net
	size int
	log  *slog.Logger
}

func (b *bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := b.Net.ListenUDP(network, laddr)
	if err == nil {
		b.grow(c)
	}
	return c, err
}

func (b *bufferedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := b.Net.ListenPacket(network, address)
	if err == nil {
		b.grow(c)
	}
	return c, err
}

func (b *bufferedNet) grow(c any) {
	if u, ok := c.(*net.UDPConn); ok {
		setReadBuffer(u, b.size, b.log) // tries SO_RCVBUFFORCE, warns when capped
		return
	}
	if s, ok := c.(interface{ SetReadBuffer(int) error }); ok {
		if err := s.SetReadBuffer(b.size); err != nil {
			b.log.Warn("UDP receive buffer not set", "bytes", b.size, "err", err)
		}
	}
}

// Offer makes a peer connection with the chattorrent DataChannel (ordered, reliable,
// negotiated in-band) and returns its complete offer SDP, ICE gathering finished
// (non-trickle). There are no STUN or TURN servers: peers meet on the LAN. On error
// nothing is left open.
func Offer(ctx context.Context, api *webrtc.API) (*webrtc.PeerConnection, *webrtc.DataChannel, string, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, "", fmt.Errorf("rtc: offer: %w", err)
	}
	ordered := true
	dc, err := pc.CreateDataChannel(Label, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		return nil, nil, "", closeOnErr(pc, fmt.Errorf("rtc: offer: data channel: %w", err))
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, nil, "", closeOnErr(pc, fmt.Errorf("rtc: offer: %w", err))
	}
	sdp, err := gather(ctx, pc, offer)
	if err != nil {
		return nil, nil, "", closeOnErr(pc, fmt.Errorf("rtc: offer: %w", err))
	}
	return pc, dc, sdp, nil
}

// Answer makes a peer connection for a remote offer and returns its complete answer SDP.
// The offerer's chattorrent DataChannel arrives on the returned channel once it is
// announced (pass it to Open); channels with other labels are closed.
func Answer(ctx context.Context, api *webrtc.API, offerSDP string) (*webrtc.PeerConnection, <-chan *webrtc.DataChannel, string, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, "", fmt.Errorf("rtc: answer: %w", err)
	}
	incoming := make(chan *webrtc.DataChannel, 1)
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != Label {
			_ = dc.Close()
			return
		}
		select {
		case incoming <- dc:
		default: // a second chattorrent channel: only the first is used
			_ = dc.Close()
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return nil, nil, "", closeOnErr(pc, fmt.Errorf("rtc: answer: remote offer: %w", err))
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, nil, "", closeOnErr(pc, fmt.Errorf("rtc: answer: %w", err))
	}
	sdp, err := gather(ctx, pc, answer)
	if err != nil {
		return nil, nil, "", closeOnErr(pc, fmt.Errorf("rtc: answer: %w", err))
	}
	return pc, incoming, sdp, nil
}

// Accept completes the offerer's side with the remote answer.
func Accept(pc *webrtc.PeerConnection, answerSDP string) error {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answerSDP}); err != nil {
		return fmt.Errorf("rtc: accept answer: %w", err)
	}
	return nil
}

// gather sets the local description and waits for ICE gathering to finish.
func gather(ctx context.Context, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) (string, error) {
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("local description: %w", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return "", fmt.Errorf("ICE gathering: %w", ctx.Err())
	}
	local := pc.LocalDescription()
	if local == nil {
		return "", errors.New("no local description after gathering")
	}
	return local.SDP, nil
}

func closeOnErr(pc *webrtc.PeerConnection, err error) error {
	if cerr := pc.Close(); cerr != nil {
		return errors.Join(err, fmt.Errorf("rtc: close peer connection: %w", cerr))
	}
	return err
}
