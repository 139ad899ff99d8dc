package turn

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	pturn "github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

func TestCredentials(t *testing.T) {
	secret := []byte("per-boot secret")
	s := &Server{opts: Options{Secret: secret, CredentialTTL: time.Hour}}
	now := time.Unix(1_800_000_000, 0)
	user, pass, exp := s.Credentials("10.0.0.7", now)
	if user != "1800003600:10.0.0.7" || !exp.Equal(time.Unix(1_800_003_600, 0)) {
		t.Fatalf("username %q expires %v", user, exp)
	}
	// RFC-style TURN REST password: base64(HMAC-SHA1(secret, username)), as coturn's
	// use-auth-secret computes it (the vector computed with Python's hmac module).
	if want := "cb3e1CX/Xh/5z/rg0BkO84RajUs="; pass != want {
		t.Errorf("password %q, want %q", pass, want)
	}
	if Password([]byte("other secret"), user) == pass {
		t.Error("password does not depend on the secret")
	}
	for _, c := range []struct {
		user string
		at   time.Time
		ok   bool
	}{
		{user, now, true},
		{user, exp.Add(-time.Second), true},
		{user, exp, false},                     // expired
		{user, now.Add(-2 * time.Hour), false}, // further ahead than the server would hand out
		{"1800003600", now, false},             // no peer part
		{":peer", now, false},                  // no expiry
		{"-5:peer", now, false},                // negative
		{"18e8:peer", now, false},              // not an integer
		{"99999999999999999999:p", now, false}, // overflow
		{"1800003600:" + strings.Repeat("x", 65), now, false},
	} {
		if got := Check(c.user, c.at, time.Hour+time.Minute); got != c.ok {
			t.Errorf("Check(%q, %v) = %v, want %v", c.user, c.at.Unix(), got, c.ok)
		}
	}
	// The peer part is a label: colons removed, cut to 64 bytes.
	u2, _, _ := s.Credentials("a:b:"+strings.Repeat("y", 100), now)
	if _, peer, _ := strings.Cut(u2, ":"); strings.Contains(peer, ":") || len(peer) != 64 {
		t.Errorf("username %q", u2)
	}
	if !Check(u2, now, time.Hour+time.Minute) {
		t.Errorf("own username %q refused", u2)
	}
}

func TestLANAddr(t *testing.T) {
	for a, want := range map[string]bool{
		"10.1.2.3": true, "172.16.0.1": true, "192.168.4.1": true, "169.254.3.3": true, "100.64.1.1": true,
		"fd00::1": true, "::ffff:192.168.1.1": true,
		"8.8.8.8": false, "172.32.0.1": false, "2001:db8::1": false, "fe80::1": false, "0.0.0.0": false,
		"127.0.0.1": false, "::1": false, "224.0.0.251": false,
	} {
		if got := LANAddr(netip.MustParseAddr(a), false); got != want {
			t.Errorf("LANAddr(%s) = %v, want %v", a, got, want)
		}
	}
	if !LANAddr(netip.MustParseAddr("127.0.0.1"), true) {
		t.Error("loopback refused with allowLoopback")
	}
	if _, err := Start(Options{Addrs: []netip.Addr{netip.MustParseAddr("8.8.8.8")}}); err == nil {
		t.Error("Start served on a public address")
	}
}

// needNamespace skips a socket test outside a loopback-only network namespace (CI=true:
// fails).
func needNamespace(tb testing.TB) {
	tb.Helper()
	ifs, err := net.Interfaces()
	if err == nil {
		ok := true
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback == 0 {
				ok = false
			}
		}
		if ok {
			return
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("this test opens sockets: run it inside `unshare -n` (loopback only)")
	}
	tb.Skip("opens sockets: run inside `unshare -n sh -c 'ip link set lo up && go test ./net/turn/'`")
}

func startLoopback(t *testing.T, o Options) *Server {
	t.Helper()
	o.Addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	o.AllowLoopback = true
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRelayedPeers: two pion peers restricted to relay candidates (what a phone on a
// client-isolating Wi-Fi is left with) connect through the box's TURN server and
// exchange data. Without the relay they have no candidate at all.
func TestRelayedPeers(t *testing.T) {
	needNamespace(t)
	srv := startLoopback(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	newPeer := func(name string) *webrtc.PeerConnection {
		user, pass, _ := srv.Credentials(name, time.Now())
		var se webrtc.SettingEngine
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetIncludeLoopbackCandidate(true)
		pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{
			ICEServers: []webrtc.ICEServer{{
				URLs:     []string{fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", srv.Port())},
				Username: user, Credential: pass,
			}},
			ICETransportPolicy: webrtc.ICETransportPolicyRelay,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	a, b := newPeer("a"), newPeer("b")
	dcA, err := a.CreateDataChannel("chattorrent", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	b.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) { got <- string(m.Data) })
	})
	opened := make(chan struct{})
	dcA.OnOpen(func() { close(opened) })

	gather := func(pc *webrtc.PeerConnection, desc webrtc.SessionDescription) string {
		done := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(desc); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatal("gathering did not complete")
		}
		return pc.LocalDescription().SDP
	}
	offer, err := a.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	offerSDP := gather(a, offer)
	if !strings.Contains(offerSDP, "typ relay") || strings.Contains(offerSDP, "typ host") {
		t.Fatalf("offer candidates are not relay only:\n%s", offerSDP)
	}
	if err := b.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		t.Fatal(err)
	}
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	answerSDP := gather(b, answer)
	if err := a.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answerSDP}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-opened:
	case <-ctx.Done():
		t.Fatal("data channel did not open through the relay")
	}
	if err := dcA.SendText("through the box"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "through the box" {
			t.Fatalf("got %q", m)
		}
	case <-ctx.Done():
		t.Fatal("no message through the relay")
	}
	pair, err := a.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatal("no selected pair", err)
	}
	if pair.Local.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Typ != webrtc.ICECandidateTypeRelay {
		t.Errorf("selected pair %s", pair)
	}
	if n := srv.Allocations(); n < 2 {
		t.Errorf("%d allocations open on the box, want at least 2", n)
	}
}

// TestAuthAndQuota: a wrong password or an expired credential gets no relay; a user
// at its quota gets no more.
func TestAuthAndQuota(t *testing.T) {
	needNamespace(t)
	srv := startLoopback(t, Options{MaxPerClient: 1, MaxAllocations: 2})
	addr := fmt.Sprintf("127.0.0.1:%d", srv.Port())
	allocate := func(user, pass string) error {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := pturn.NewClient(&pturn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr,
			Username: user, Password: pass, Realm: Realm, Conn: conn, RTO: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Listen(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); conn.Close() })
		if mapped, err := c.SendBindingRequest(); err != nil || mapped == nil { // STUN
			t.Fatalf("STUN binding: %v, %v", mapped, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		relay, err := c.AllocateWithContext(ctx)
		if err == nil {
			t.Cleanup(func() { relay.Close() })
		}
		return err
	}
	now := time.Now()
	u, p, _ := srv.Credentials("phone1", now)
	if err := allocate(u, p); err != nil {
		t.Fatalf("a valid credential: %v", err)
	}
	if err := allocate(u, "wrong"); err == nil {
		t.Error("a wrong password got a relay")
	}
	old := srv.opts.CredentialTTL
	srv.opts.CredentialTTL = -time.Minute // hands out an already expired credential
	ue, pe, _ := srv.Credentials("phone2", now)
	srv.opts.CredentialTTL = old
	if err := allocate(ue, pe); err == nil {
		t.Error("an expired credential got a relay")
	}
	if err := allocate(u, p); err == nil {
		t.Error("a second relay past the per-user quota of 1")
	}
	u2, p2, _ := srv.Credentials("phone2", now)
	if err := allocate(u2, p2); err != nil {
		t.Fatalf("another user: %v", err)
	}
	u3, p3, _ := srv.Credentials("phone3", now)
	if err := allocate(u3, p3); err == nil {
		t.Error("a relay past the box's total of 2")
	}
}
