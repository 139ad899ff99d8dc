package mdns

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func TestAnswersFor(t *testing.T) {
	name := func(s string) dnsmessage.Name { return dnsmessage.MustNewName(s) }
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{Response: true, Authoritative: true})
	b.StartAnswers()
	b.AResource(dnsmessage.ResourceHeader{Name: name("Box.local."), Class: dnsmessage.ClassINET, TTL: 120}, dnsmessage.AResource{A: [4]byte{10, 0, 0, 7}})
	b.AResource(dnsmessage.ResourceHeader{Name: name("other.local."), Class: dnsmessage.ClassINET, TTL: 120}, dnsmessage.AResource{A: [4]byte{10, 0, 0, 8}})
	b.StartAdditionals()
	b.AResource(dnsmessage.ResourceHeader{Name: name("box.local."), Class: dnsmessage.ClassINET, TTL: 120}, dnsmessage.AResource{A: [4]byte{10, 0, 0, 9}})
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("10.0.0.9")}
	if got := answersFor(msg, "box.local."); !slices.Equal(got, want) {
		t.Errorf("answersFor = %v, want %v", got, want)
	}

	// A query (ours, or anyone's) is not an answer; junk never panics.
	q, err := query("box.local.")
	if err != nil {
		t.Fatal(err)
	}
	if got := answersFor(q, "box.local."); got != nil {
		t.Errorf("a query gave %v", got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		junk := slices.Clone(msg[:rng.IntN(len(msg)+1)])
		if len(junk) > 0 {
			junk[rng.IntN(len(junk))] ^= byte(1 + rng.IntN(255))
		}
		answersFor(junk, "box.local.")
	}
}
