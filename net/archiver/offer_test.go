package archiver

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/net/torrent"
	"github.com/chattorrent/chattorrent/store/testenv"
)

// TestFilterCandidates: candidates outside the box's subnets (a TEST-NET address, a name
// pion would look up in DNS, an unreadable line) are removed; the box's subnets and mDNS
// names stay, and every other line is kept byte for byte.
func TestFilterCandidates(t *testing.T) {
	subnets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	head := "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
	kept := []string{
		"a=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host\r\n",
		"a=candidate:2 1 udp 2130706431 ::ffff:10.0.0.6 50000 typ host\r\n",
		"a=candidate:3 1 udp 2130706431 4b1d4e3c-7f1a-4a8e-9d1e-2c3f4a5b6c7d.local 50000 typ host\r\n",
		"a=candidate:4 1 udp 1694498815 10.0.0.9 61000 typ srflx raddr 0.0.0.0 rport 0\r\n",
	}
	dropped := []string{
		"a=candidate:5 1 udp 2130706431 203.0.113.5 50000 typ host\r\n",
		"a=candidate:6 1 udp 2130706431 10.0.1.5 50000 typ host\r\n", // the next subnet
		"a=candidate:7 1 udp 2130706431 probe.example 50000 typ host\r\n",
		"a=candidate:8 1 udp\r\n",
		"a=candidate:9 1 udp 2130706431 fe80::1%eth0 50000 typ host\r\n",
	}
	in := head + dropped[0] + kept[0] + dropped[1] + kept[1] + dropped[2] + kept[2] + dropped[3] + dropped[4] + kept[3] +
		"a=end-of-candidates\r\n"
	got, removed := filterCandidates(in, subnets)
	want := head + strings.Join(kept, "") + "a=end-of-candidates\r\n"
	if got != want {
		t.Errorf("filtered SDP:\n%q\nwant\n%q", got, want)
	}
	if wantRemoved := []string{"203.0.113.5", "10.0.1.5", "probe.example", "", "fe80::1%eth0"}; !slices.Equal(removed, wantRemoved) {
		t.Errorf("removed %q, want %q", removed, wantRemoved)
	}
	if got, removed := filterCandidates(in, nil); strings.Contains(got, "10.0.0.5") || len(removed) != 8 {
		t.Errorf("no subnets kept %q (removed %q): only mDNS names may stay", got, removed)
	}
}

// TestConnectSkipsOutsideCandidates: a real pion offer with two extra candidates, one
// towards a TEST-NET address and one towards a listening host outside the box's subnets
// (127.0.0.2 while the box's subnet is 127.0.0.1/32), still connects over its own
// loopback candidate, and the box sends nothing to the outside host: no ICE check.
func TestConnectSkipsOutsideCandidates(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	a, _ := runArchiver(t, Options{Subnets: func() []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} }})
	outside, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	port := outside.LocalAddr().(*net.UDPAddr).Port

	api, err := rtc.NewAPI(rtc.Options{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	pc, dc, sdp, err := rtc.Offer(t.Context(), api)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	// The extra candidates come first, with the highest priority: pion would check them first.
	i := strings.Index(sdp, "a=candidate:")
	if i < 0 {
		t.Fatalf("no candidate in the offer:\n%s", sdp)
	}
	extra := "a=candidate:901 1 udp 2130706431 203.0.113.5 9 typ host\r\n" +
		"a=candidate:902 1 udp 2130706431 127.0.0.2 " + strconv.Itoa(port) + " typ host\r\n"
	sdp = sdp[:i] + extra + sdp[i:]
	room := strings.Repeat("6", 32)
	offer, err := torrent.Encode(&torrent.Invitation{Role: torrent.RoleOffer, Room: room, RoomName: "Patio", SDP: sdp,
		Session: strings.Repeat("d", 32), Peer: torrent.Peer{ID: "ghost", Name: "Móvil"}})
	if err != nil {
		t.Fatal(err)
	}
	ans, err := a.ConnectFrom(t.Context(), offer, Caller{Addr: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := torrent.Decode(ans)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtc.Accept(pc, inv.SDP); err != nil {
		t.Fatal(err)
	}
	if _, err := rtc.Open(t.Context(), dc); err != nil {
		t.Fatalf("the offer's loopback candidate did not connect: %v", err)
	}
	// ICE checks every pair within its first seconds; give a refused one time to show.
	outside.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, from, err := outside.ReadFrom(make([]byte, 1500)); err == nil {
		t.Errorf("the box sent %d bytes from %v to a candidate outside its subnets", n, from)
	}
}
