package evaluate

import (
	"os"
	"testing"

	"github.com/bestofn/bestofn/teacher/teachertest"
)

// TestMain removes the bestofn binary teachertest builds for this package's process tests.
func TestMain(m *testing.M) { os.Exit(teachertest.Main(m)) }
