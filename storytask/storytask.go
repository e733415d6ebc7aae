package storytask

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// The family's vocabulary: characters, names and objects common in children's stories (and so in the
// stories260K base model's data), and the word limits.
var (
	Animals  = []string{"cat", "dog", "bird", "bunny", "bear", "frog", "duck", "fish"}
	Names    = []string{"Tom", "Lily", "Ben", "Sue", "Max", "Mia", "Sam", "Lucy", "Tim", "Anna", "Jack", "Amy", "Bob", "Kitty", "Spot", "Daisy"}
	Objects  = []string{"ball", "kite", "hat", "box", "cake", "tree", "book", "car", "toy", "flower", "boat", "apple", "bed", "cup", "doll", "shoe"}
	Limits   = []int{20, 30, 40, 50}
	phrasing = []string{
		"Write a short story about a %s named %s.",
		"Tell a story about a %s called %s.",
		"Write a story for children about a %s named %s.",
	}
)

// Splits.
const (
	Train = "train"
	Eval  = "eval"
)

// Task is one instruction of the family and the parts it was made from.
type Task struct {
	ID          string `json:"id"`
	Instruction string `json:"instruction"`
	Split       string `json:"split"`
	Animal      string `json:"animal"`
	Name        string `json:"name"`
	Object      string `json:"object"`
	MaxWords    int    `json:"max_words"` // "fewer than MaxWords words"
	Happy       bool   `json:"happy"`     // "The story ends happily."
}

// HeldOut reports whether the (name, object) pair belongs to the evaluation split. Unknown words are not held
// out.
func HeldOut(name, object string) bool {
	i, j := index(Names, name), index(Objects, object)
	return i >= 0 && j >= 0 && (i+3*j)%8 == 0
}

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// Text is the instruction's wording for its parts; phrase selects one of the family's phrasings.
func Text(animal, name, object string, maxWords int, happy bool, phrase int) string {
	var b strings.Builder
	fmt.Fprintf(&b, phrasing[phrase%len(phrasing)], animal, name)
	fmt.Fprintf(&b, " Mention %s %s.", article(object), object)
	if happy {
		b.WriteString(" The story ends happily.")
	}
	fmt.Fprintf(&b, " Use fewer than %d words.", maxWords)
	return b.String()
}

// Generate returns n distinct instructions of the split ("train" or "eval"), deterministic for the seed: parts
// drawn uniformly, a pair of the other split redrawn, a repeated instruction text redrawn. It fails when the
// split has fewer than n distinct instructions.
func Generate(seed uint64, split string, n int) ([]Task, error) {
	if split != Train && split != Eval {
		return nil, fmt.Errorf("storytask: split must be %q or %q, not %q", Train, Eval, split)
	}
	stream := uint64(1)
	if split == Eval {
		stream = 2
	}
	if capacity := combinations(split); n > capacity {
		return nil, fmt.Errorf("storytask: %d %s instructions asked, the split has %d", n, split, capacity)
	}
	rng := rand.New(rand.NewPCG(seed, stream))
	seen := map[string]bool{}
	out := make([]Task, 0, n)
	for len(out) < n {
		name, object := Names[rng.IntN(len(Names))], Objects[rng.IntN(len(Objects))]
		animal := Animals[rng.IntN(len(Animals))]
		limit := Limits[rng.IntN(len(Limits))]
		happy := rng.IntN(2) == 0
		phrase := rng.IntN(len(phrasing))
		if HeldOut(name, object) != (split == Eval) {
			continue
		}
		text := Text(animal, name, object, limit, happy, phrase)
		if seen[text] {
			continue
		}
		seen[text] = true
		out = append(out, Task{ID: fmt.Sprintf("%s-%04d", split, len(out)), Instruction: text, Split: split,
			Animal: animal, Name: name, Object: object, MaxWords: limit, Happy: happy})
	}
	return out, nil
}

// combinations is the number of distinct instruction texts of a split.
func combinations(split string) int {
	pairs := 0
	for _, nm := range Names {
		for _, o := range Objects {
			if HeldOut(nm, o) == (split == Eval) {
				pairs++
			}
		}
	}
	return pairs * len(Animals) * len(Limits) * 2 * len(phrasing)
}

// article is "an" before a vowel, else "a".
func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}
