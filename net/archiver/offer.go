package archiver

import (
	"errors"
	"fmt"

	"github.com/pion/webrtc/v4"
)

// MaxOfferCandidates bounds the ICE candidates an offer may list: the box runs
// connectivity checks against each (a phone lists a handful; a browser on a busy laptop a
// dozen or two).
const MaxOfferCandidates = 32

// checkOffer refuses, before anything is made for it, an offer SDP the box cannot answer:
// one that does not parse, that offers no DataChannel (an "application" section), that
// lacks the DTLS fingerprint or the ICE credentials, or lists more than MaxOfferCandidates
// candidates. Errors wrap ErrBadOffer.
func checkOffer(text string) error {
	desc := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: text}
	parsed, err := desc.Unmarshal()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	_, fingerprint := parsed.Attribute("fingerprint")
	_, ufrag := parsed.Attribute("ice-ufrag")
	_, pwd := parsed.Attribute("ice-pwd")
	application, candidates := false, 0
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media == "application" {
			application = true
		}
		for _, a := range m.Attributes {
			switch a.Key {
			case "fingerprint":
				fingerprint = true
			case "ice-ufrag":
				ufrag = true
			case "ice-pwd":
				pwd = true
			case "candidate":
				candidates++
			}
		}
	}
	switch {
	case !application:
		return fmt.Errorf("%w: no DataChannel section", ErrBadOffer)
	case !fingerprint:
		return fmt.Errorf("%w: no DTLS fingerprint", ErrBadOffer)
	case !ufrag || !pwd:
		return fmt.Errorf("%w: no ICE credentials", ErrBadOffer)
	case candidates > MaxOfferCandidates:
		return fmt.Errorf("%w: %d ICE candidates (at most %d)", ErrBadOffer, candidates, MaxOfferCandidates)
	}
	return nil
}

// isOfferRefused reports whether pion refused the offer's content (rtc.Answer's error): the
// client's fault, not the box's.
func isOfferRefused(err error) bool {
	for _, e := range []error{
		webrtc.ErrSessionDescriptionNoFingerprint, webrtc.ErrSessionDescriptionInvalidFingerprint,
		webrtc.ErrSessionDescriptionConflictingFingerprints, webrtc.ErrSessionDescriptionMissingIceUfrag,
		webrtc.ErrSessionDescriptionMissingIcePwd, webrtc.ErrSessionDescriptionConflictingIceUfrag,
		webrtc.ErrSessionDescriptionConflictingIcePwd,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
