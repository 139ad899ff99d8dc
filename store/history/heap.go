package history

// MinHeap keeps Items as a binary min-heap under Less: Items[0] is the least. The k-way
// merges of authors' chains (Log.Missing, the store's index and its export stream) share
// it; each changes its top in place and calls Fix, or DropTop once the top run is done.
type MinHeap[T any] struct {
	Items []T
	Less  func(a, b T) bool
}

// Init orders Items.
func (h *MinHeap[T]) Init() {
	for i := len(h.Items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// Fix restores the order after the top changed.
func (h *MinHeap[T]) Fix() { h.down(0) }

// DropTop removes the top.
func (h *MinHeap[T]) DropTop() {
	last := len(h.Items) - 1
	var zero T
	h.Items[0], h.Items[last] = h.Items[last], zero
	h.Items = h.Items[:last]
	h.down(0)
}

func (h *MinHeap[T]) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h.Items) {
			return
		}
		m := l
		if r := l + 1; r < len(h.Items) && h.Less(h.Items[r], h.Items[l]) {
			m = r
		}
		if !h.Less(h.Items[m], h.Items[i]) {
			return
		}
		h.Items[i], h.Items[m] = h.Items[m], h.Items[i]
		i = m
	}
}
