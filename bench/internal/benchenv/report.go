package benchenv

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// LoadAverage is the machine's 1, 5 and 15 minute load averages.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// PrintClasses prints the requests of log by Class, in total and per image.
func PrintClasses(w io.Writer, title string, images int, log []Request) {
	counts := ClassCounts(log)
	fmt.Fprintf(w, "%s: %.2f requests per image\n", title, float64(len(log))/float64(images))
	t := NewTable(w, "request class", "total", "per image")
	for _, class := range Keys(counts) {
		t.Row(class, fmt.Sprint(counts[class]), fmt.Sprintf("%.2f", float64(counts[class])/float64(images)))
	}
	t.Flush()
}

// Keys returns the keys of the maps, sorted, without duplicates.
func Keys(maps ...map[string]int) []string {
	var out []string
	for _, m := range maps {
		for k := range m {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ByCount returns m's keys, the largest count first.
func ByCount(m map[string]int) []string {
	out := Keys(m)
	sort.SliceStable(out, func(i, j int) bool { return m[out[i]] > m[out[j]] })
	return out
}

// Fold replaces the repository and digests of a request path with
// placeholders, so that the same request for every image reads as one.
func Fold(path string) string {
	if repo := Repository(path); repo != "" {
		path = strings.Replace(path, repo, "REPO", 1)
	}
	parts := strings.Split(path, "/")
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, "sha256:"):
			parts[i] = "sha256:…"
		case strings.HasPrefix(p, "sha256-") && len(p) >= len("sha256-")+64:
			parts[i] = "sha256-…" + p[len("sha256-")+64:]
		}
	}
	return strings.Join(parts, "/")
}
