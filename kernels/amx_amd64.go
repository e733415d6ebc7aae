//go:build amd64

package kernels

// amxPrepQ8_0 writes the weight scales of the 16 Q8_0 rows at w (rb bytes apart, nblocks blocks) into the
// AMX scratch as float32 (row m's scale of block k at scratch[amxScales + 64k + 4m]).
//
//go:noescape
func amxPrepQ8_0(nblocks int, w *byte, rb int, scratch *byte)

// amxPrepQ4_0 is amxPrepQ8_0 for Q4_0 rows, and also unpacks their quants to int8 values nibble-8 (row m's
// block k at scratch[amxScales + 64*nblocks + (m*nblocks+k)*32]: values 0..15 then 16..31).
//
//go:noescape
func amxPrepQ4_0(nblocks int, w *byte, rb int, scratch *byte)

// amxTile computes, for the 16 weight rows of a panel (block k of row m: 32 int8 quants at
// a + m*astride + k*ablock, scale in the scratch from amxPrep*) and the activation tile b (block k's tile at
// b + 512k, see packAMX; scales at dx + 16k), out[n*ostride/4 + m] = sum over blocks of d_w*d_x*sum(w*x), for
// n < nvalid; nblocks must be even.
//
//go:noescape
func amxTile(nblocks int, a *byte, astride, ablock int, b *byte, dx *float32, out *float32, ostride, nvalid int, scratch *byte)
