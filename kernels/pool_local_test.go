package kernels

import "testing"

// TestPoolLocal checks that Local makes a value once per key and pool, keeps keys of different types apart,
// and allocates nothing once the value exists.
func TestPoolLocal(t *testing.T) {
	type keyA struct{}
	type keyB struct{}
	p, q := NewPool(1), NewPool(2)
	defer p.Close()
	defer q.Close()
	made := 0
	newInt := func() any { made++; return new(int) }
	a := p.Local(keyA{}, newInt).(*int)
	*a = 7
	if b := p.Local(keyB{}, newInt).(*int); b == a || *b != 0 {
		t.Fatalf("key B gave key A's value (%d)", *b)
	}
	if got := p.Local(keyA{}, newInt).(*int); got != a {
		t.Fatal("a second call with key A made a new value")
	}
	if got := q.Local(keyA{}, newInt).(*int); got == a {
		t.Fatal("another pool returned this pool's value")
	}
	if made != 3 {
		t.Fatalf("newValue called %d times, want 3", made)
	}
	if allocs := testing.AllocsPerRun(10, func() { p.Local(keyA{}, newInt) }); allocs != 0 {
		t.Fatalf("%v allocations per call", allocs)
	}
}
