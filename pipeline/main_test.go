package pipeline

import (
	"os"
	"testing"

	"github.com/bestofn/bestofn/teacher/teachertest"
)

func TestMain(m *testing.M) { os.Exit(teachertest.Main(m)) }
