package train

import "math"

// pairLoss is the pairwise reward-model loss of one pair, -log sigmoid(rc - rr - margin) (TRL's
// RewardTrainer with a margin, InstructGPT's without), and its derivative with respect to the chosen score
// (that of the rejected score is its negative), in float64.
func pairLoss(rc, rr, margin float64) (loss, dChosen float64) {
	z := rc - rr - margin
	// -log sigmoid(z) = softplus(-z), computed without overflow.
	loss = math.Max(-z, 0) + math.Log1p(math.Exp(-math.Abs(z)))
	return loss, -1 / (1 + math.Exp(z)) // d/dz = -sigmoid(-z)
}
