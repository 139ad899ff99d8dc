package history

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Stored looks up the author's stored entry at seq. CheckBatch uses it to tell duplicates
// and forks from new entries and to link a run to the entry stored before it. A nil
// Stored is an empty history.
type Stored func(author string, seq int64) (Entry, bool)

// CheckBatch checks a batch of received entries, of any authors in any order, verifying
// one Ed25519 signature per run instead of one per entry (docs/PROTOCOL.md §3, "Verifying
// chains"). It returns one error per entry of batch, nil for an entry that passes: its
// fields, id and time check (Entry.CheckUnsigned) and a valid signature of its author
// covers it. The chain rules against the stored history (fork, gap, a broken link to the
// stored head) stay Log's (Log.AddChecked), applied when the entry is added.
//
// Per author, entries that pass CheckUnsigned are sorted by seq, then:
//   - an entry whose id is stored at its (author, seq) is a duplicate: nil, nothing checked;
//   - an entry at a seq where another entry is stored, or where the batch holds two
//     different entries, is checked on its own signature (a fork must be proved by two
//     valid signatures, so it is never taken on a link);
//   - the others form runs of consecutive seqs. Each entry of a run after the first must
//     have prev = the id of the run's entry before it; the first, when an entry is stored
//     at seq-1, must have prev = its id. If every link holds, the signature of the run's
//     last entry is verified: it signs prev, which is the hash of the entry before it
//     (signature included), and so on down the run, so one valid signature authenticates
//     the whole run. One bad link (CodeBrokenChain) or a bad last signature
//     (CodeBadSignature) refuses the whole run: the entry at fault gets the error, every
//     other entry of the run the same code with By set to the id of the entry at fault.
//     Runs of other authors, and other runs of the same author, are unaffected.
//
// The newest entry of every run is verified on its own signature even when later entries
// of its author would come in another batch: nothing is accepted on a promise.
func CheckBatch(room string, batch []Entry, now time.Time, stored Stored) []error {
	errs := make([]error, len(batch))
	if stored == nil {
		stored = func(string, int64) (Entry, bool) { return Entry{}, false }
	}
	byAuthor := make(map[string][]int)
	var authors []string
	for i := range batch {
		if err := batch[i].CheckUnsigned(room, now); err != nil {
			errs[i] = err
			continue
		}
		a := batch[i].Author
		if _, ok := byAuthor[a]; !ok {
			authors = append(authors, a)
		}
		byAuthor[a] = append(byAuthor[a], i)
	}
	for _, a := range authors {
		checkAuthor(batch, byAuthor[a], errs, stored)
	}
	return errs
}

// checkAuthor checks one author's entries of a batch (indices into batch; each passed
// CheckUnsigned).
func checkAuthor(batch []Entry, idx []int, errs []error, stored Stored) {
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(batch[a].Seq, batch[b].Seq) })
	var fresh []int      // new entries, one per seq, in seq order
	copies := [][2]int{} // (a later copy, the first one) of one entry sent twice in the batch
	for k := 0; k < len(idx); {
		seq := batch[idx[k]].Seq
		j := k
		var uniq []int
		for ; j < len(idx) && batch[idx[j]].Seq == seq; j++ {
			i := idx[j]
			if f := slices.IndexFunc(uniq, func(u int) bool { return batch[u].ID == batch[i].ID }); f >= 0 {
				copies = append(copies, [2]int{i, uniq[f]})
				continue
			}
			uniq = append(uniq, i)
		}
		k = j
		s, isStored := stored(batch[uniq[0]].Author, seq)
		switch {
		case isStored:
			for _, i := range uniq {
				if batch[i].ID != s.ID {
					errs[i] = batch[i].verifySig() // a fork if it verifies: Log says so
				}
			}
		case len(uniq) > 1:
			for _, i := range uniq {
				errs[i] = batch[i].verifySig()
			}
		default:
			fresh = append(fresh, uniq[0])
		}
	}
	for len(fresh) > 0 {
		n := 1
		for n < len(fresh) && batch[fresh[n]].Seq == batch[fresh[n-1]].Seq+1 {
			n++
		}
		checkRun(batch, fresh[:n], errs, stored)
		fresh = fresh[n:]
	}
	for _, c := range copies {
		errs[c[0]] = errs[c[1]]
	}
}

// checkRun checks one run: entries of one author at consecutive seqs, none stored.
func checkRun(batch []Entry, run []int, errs []error, stored Stored) {
	first := &batch[run[0]]
	if first.Seq > 1 {
		if s, ok := stored(first.Author, first.Seq-1); ok && s.ID != first.Prev {
			refuseRun(batch, run, errs, 0, &Error{Code: CodeBrokenChain, Field: "prev",
				Msg: fmt.Sprintf("prev is not the id of the author's stored entry at seq %d", first.Seq-1)})
			return
		}
	}
	for k := 1; k < len(run); k++ {
		if e := &batch[run[k]]; e.Prev != batch[run[k-1]].ID {
			refuseRun(batch, run, errs, k, &Error{Code: CodeBrokenChain, Field: "prev",
				Msg: fmt.Sprintf("prev is not the id of the author's entry at seq %d in this batch", e.Seq-1)})
			return
		}
	}
	last := len(run) - 1
	if err := batch[run[last]].verifySig(); err != nil {
		refuseRun(batch, run, errs, last, err.(*Error))
	}
}

// refuseRun refuses every entry of run: the one at fault (run[at]) with err, the others
// with err's code and By.
func refuseRun(batch []Entry, run []int, errs []error, at int, err *Error) {
	culprit := &batch[run[at]]
	for k, i := range run {
		if k == at {
			errs[i] = err
			continue
		}
		errs[i] = &Error{Code: err.Code, By: culprit.ID,
			Msg: fmt.Sprintf("refused with its run (seqs %d to %d): the entry at seq %d: %s",
				batch[run[0]].Seq, batch[run[len(run)-1]].Seq, culprit.Seq, err.Msg)}
	}
}
