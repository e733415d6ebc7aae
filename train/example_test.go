package train_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/bestofn/bestofn/train"
)

// Training a reward model: a backbone from a generator checkpoint with a new scalar head, preference pairs
// tokenized from TRL rows, a seeded held-out fifth, checkpoints to resume from.
func ExampleTrainReward() {
	m, err := train.Open("../../shared/models/stories260K/stories260K.gguf",
		train.Options{Head: train.HeadReward, Threads: 2, MaxTokens: 1024, MaxSeqLen: 64}, 1)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// Two kinds of answers to the same questions; the chosen one is polite.
	var pairs []train.Pair
	for i := 0; i < 40; i++ {
		q := []int32{1, int32(100 + i), int32(200 + i%7)}
		pairs = append(pairs, train.Pair{
			Chosen:   append(append([]int32{}, q...), 300, 301, 302),
			Rejected: append(append([]int32{}, q...), 400, 401),
		})
	}
	dir, _ := os.MkdirTemp("", "rm")
	defer os.RemoveAll(dir)
	cfg := train.DefaultConfig()
	cfg.Epochs, cfg.BatchSize, cfg.LR, cfg.WarmupSteps = 3, 8, 1e-2, 2
	cfg.CheckpointPath = filepath.Join(dir, "rm.ckpt")
	res, err := train.TrainReward(context.Background(), m, pairs, cfg, train.Hooks{
		Eval: func(e train.EvalInfo) { fmt.Printf("step %d: held-out accuracy %.2f\n", e.Step, e.Metrics["accuracy"]) },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pairs:", res.TrainPairs, "train,", res.EvalPairs, "held out")
	// Output:
	// step 4: held-out accuracy 1.00
	// step 8: held-out accuracy 1.00
	// step 12: held-out accuracy 1.00
	// pairs: 32 train, 8 held out
}
