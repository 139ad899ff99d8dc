package turn

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	pturn "github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"github.com/chattorrent/chattorrent/store/testenv"
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
	testenv.NeedLoopbackOnly(t)
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
	testenv.NeedLoopbackOnly(t)
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

// turnClient is a pion TURN client of srv with a fresh credential for client.
func turnClient(t *testing.T, srv *Server, client string) *pturn.Client {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", srv.Port())
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	user, pass, _ := srv.Credentials(client, time.Now())
	c, err := pturn.NewClient(&pturn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr,
		Username: user, Password: pass, Realm: Realm, Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

func allocateFor(t *testing.T, c *pturn.Client) (net.PacketConn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	relay, err := c.AllocateWithContext(ctx)
	if err == nil {
		t.Cleanup(func() { relay.Close() })
	}
	return relay, err
}

// TestRelayOnlyToSubnetClients: a relay takes a permission towards the box's own address
// and towards a client of the box's subnets holding a credential; not towards another
// host of the subnet, nor an address outside it (even one a credential was made for).
// Data written through the relay to a refused host never reaches it.
func TestRelayOnlyToSubnetClients(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	srv := startLoopback(t, Options{Subnets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	c := turnClient(t, srv, "127.0.0.1")
	relay, err := allocateFor(t, c)
	if err != nil {
		t.Fatal(err)
	}
	srv.Credentials("127.0.0.3", time.Now())  // a phone that asked /api/ice
	srv.Credentials("192.0.2.10", time.Now()) // outside the box's subnets: no relay to it
	udp := func(a string) net.Addr { return &net.UDPAddr{IP: net.ParseIP(a), Port: 9} }
	for peer, ok := range map[string]bool{
		"127.0.0.1": true, "127.0.0.3": true, // the box itself, a credential holder
		"127.0.0.2": false, "192.0.2.10": false, "10.1.2.3": false, "8.8.8.8": false,
	} {
		if err := c.CreatePermission(udp(peer)); (err == nil) != ok {
			t.Errorf("permission towards %s: %v, want allowed %v", peer, err, ok)
		}
	}

	// A LAN host that never asked for a credential gets nothing through the relay (the
	// relay's WriteTo asks for the permission and a channel first).
	other, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := relay.WriteTo([]byte("probe"), other.LocalAddr()); err == nil {
		t.Error("the relay wrote to a host outside the credential holders")
	}
	other.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, from, err := other.ReadFrom(make([]byte, 64)); err == nil {
		t.Errorf("a host that holds no credential got %d bytes from %v through the relay", n, from)
	}
	// A holder does get them.
	phone, err := net.ListenPacket("udp4", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if _, err := relay.WriteTo([]byte("hello"), phone.LocalAddr()); err != nil {
		t.Fatalf("relay to a credential holder: %v", err)
	}
	phone.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if n, _, err := phone.ReadFrom(buf); err != nil || string(buf[:n]) != "hello" {
		t.Errorf("the holder got %q, %v", buf[:n], err)
	}
}

// TestPerClientCap: one client gets DefaultMaxAllocationsPerClient relays under the
// default options, and no more; another client still gets one.
func TestPerClientCap(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	srv := startLoopback(t, Options{})
	for i := range DefaultMaxAllocationsPerClient {
		if _, err := allocateFor(t, turnClient(t, srv, "10.0.0.7")); err != nil {
			t.Fatalf("relay %d of one client: %v", i+1, err)
		}
	}
	if _, err := allocateFor(t, turnClient(t, srv, "10.0.0.7")); err == nil {
		t.Errorf("relay %d of one client granted (cap %d)", DefaultMaxAllocationsPerClient+1, DefaultMaxAllocationsPerClient)
	}
	if _, err := allocateFor(t, turnClient(t, srv, "10.0.0.8")); err != nil {
		t.Errorf("another client: %v", err)
	}
}

// TestCredentialHolders: relay destinations are the box's own addresses and the clients
// inside Subnets holding an unexpired credential; the set stays within
// MaxCredentialClients, forgetting the credential that ends first.
func TestCredentialHolders(t *testing.T) {
	own := netip.MustParseAddr("192.168.4.1")
	s := &Server{addrs: []netip.Addr{own}, opts: Options{CredentialTTL: time.Hour,
		Subnets: []netip.Prefix{netip.MustParsePrefix("192.168.4.0/24"), netip.MustParsePrefix("127.0.0.0/8")}}}
	now := time.Unix(1_800_000_000, 0)
	s.Credentials("192.168.4.20", now)
	s.Credentials("::ffff:192.168.4.21", now)
	s.Credentials("10.9.9.9", now)  // outside the subnets
	s.Credentials("127.0.0.5", now) // loopback without AllowLoopback
	for a, want := range map[string]bool{
		"192.168.4.1": true, "192.168.4.20": true, "192.168.4.21": true,
		"192.168.4.22": false, "10.9.9.9": false, "127.0.0.5": false, "8.8.8.8": false,
	} {
		if got := s.Relays(netip.MustParseAddr(a), now); got != want {
			t.Errorf("Relays(%s) = %v, want %v", a, got, want)
		}
	}
	if s.Relays(netip.MustParseAddr("192.168.4.20"), now.Add(time.Hour)) {
		t.Error("relays to a client whose credential ended")
	}
	if !s.Relays(own, now.Add(48*time.Hour)) {
		t.Error("the box's own address is always a destination")
	}

	s.opts.Subnets = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	s.holders = nil
	holder := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}) }
	const made = MaxCredentialClients + 10
	for i := range made {
		s.Credentials(holder(i).String(), now.Add(time.Duration(i)*time.Second))
	}
	if n := len(s.holders); n != MaxCredentialClients {
		t.Errorf("%d holders remembered, want %d", n, MaxCredentialClients)
	}
	if s.Relays(netip.MustParseAddr("10.1.0.0"), now) {
		t.Error("the credential that ends first was not the one forgotten")
	}
	if !s.Relays(holder(made-1), now) {
		t.Error("the newest holder was not kept")
	}
}
