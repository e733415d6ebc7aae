//go:build amd64

package pipeprobe

func addChain(n int)

func vpmaddwd12(n int)

func vpmaddubsw12(n int)

func vpsignb12(n int)

func vpaddd12(n int)

func vfmadd231ps12(n int)

func maddubswFMA12(n int)

func q8SignTrick(n int)

func q8Int16(n int)

func q4Int16Sums(n int)
