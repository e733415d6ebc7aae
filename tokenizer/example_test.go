package tokenizer_test

import (
	"fmt"

	"github.com/bestofn/bestofn/tokenizer"
)

func Example() {
	tk, err := tokenizer.Load("../../shared/tokenizers/llama2/tokenizer.model")
	if err != nil {
		fmt.Println(err)
		return
	}
	ids := tk.Encode("你好, LLaMA!", tk.AddBOSDefault(), false)
	fmt.Println(ids[0] == tk.BOS(), tk.Decode(ids))

	// Stream the same ids: every piece is whole UTF-8.
	d := tk.NewDecoder(nil)
	for _, id := range ids {
		fmt.Printf("%q ", d.Next(id))
	}
	fmt.Printf("%q\n", d.Flush())
	// Output:
	// true 你好, LLaMA!
	// "" "" "你" "好" "," " L" "La" "MA" "!" ""
}
