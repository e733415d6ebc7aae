package kernels

// poolLocal is one value Local keeps.
type poolLocal struct {
	key, value any
}

// Local returns the value the pool keeps under key, made by newValue on the first call with that key: the
// per-pool state of kernels in other packages (gemm keeps its job record and partial sums there), so that
// calls repeated on one Pool allocate nothing. key must be comparable; a package's own unexported type
// (struct{}) keeps its values apart from other packages'. Like Run, Local must not be called concurrently
// with other calls on the pool.
func (p *Pool) Local(key any, newValue func() any) any {
	for _, l := range p.locals {
		if l.key == key {
			return l.value
		}
	}
	v := newValue()
	p.locals = append(p.locals, poolLocal{key, v})
	return v
}
