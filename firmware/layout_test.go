package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The module's layout rules, read from the tree itself (tailscale's deptest, without
// `go list`: the test also runs under qemu-user, from its package directory).

const modulePath = "github.com/chattorrent/chattorrent"

// maxFuncLines is the longest a non-test function may be, from `func` to its closing brace.
const maxFuncLines = 100

// longFuncExempt lists functions allowed over maxFuncLines for now, as "dir.Func" (a
// method as "dir.Type.Method"). Each carries a TODO naming who shortens it.
var longFuncExempt = map[string]bool{}

// modulePackage is one directory of the module: its path below the module and the module
// packages its non-test files import (every build tag: a rule holds on every platform).
type modulePackage struct {
	dir     string
	imports []string
}

// moduleRoot is the directory holding go.mod, above the test's working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = up
	}
}

// walkGo calls fn for every non-test Go file of the module (testdata and hidden
// directories excluded), parsed with mode.
func walkGo(t *testing.T, root string, mode parser.Mode, fn func(rel string, fset *token.FileSet, f *ast.File)) {
	t.Helper()
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, mode)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		fn(filepath.ToSlash(rel), fset, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// modulePackages reads the imports of every package of the module, by directory.
func modulePackages(t *testing.T, root string) map[string]*modulePackage {
	t.Helper()
	pkgs := make(map[string]*modulePackage)
	walkGo(t, root, parser.ImportsOnly, func(rel string, _ *token.FileSet, f *ast.File) {
		dir := path.Dir(rel)
		p := pkgs[dir]
		if p == nil {
			p = &modulePackage{dir: dir}
			pkgs[dir] = p
		}
		for _, imp := range f.Imports {
			ip, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if rest, ok := strings.CutPrefix(ip, modulePath+"/"); ok && !slices.Contains(p.imports, rest) {
				p.imports = append(p.imports, rest)
			}
		}
	})
	return pkgs
}

// deps is every module package p imports, directly or through others.
func deps(pkgs map[string]*modulePackage, p string) []string {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(q string) {
		if pk := pkgs[q]; pk != nil {
			for _, d := range pk.imports {
				if !seen[d] {
					seen[d] = true
					visit(d)
				}
			}
		}
	}
	visit(p)
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// importRule is one line of the importrules block of docs/ARCHITECTURE.md.
type importRule struct {
	line   string
	from   string
	deny   []string
	except []string
}

// matches says whether pattern (a package, "x/..." or "...") names pkg.
func matches(pattern, pkg string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// readImportRules parses the ```importrules block of docs/ARCHITECTURE.md.
func readImportRules(t *testing.T, root string) []importRule {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rules []importRule
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```importrules":
			in = true
		case in && line == "```":
			in = false
		case in && line != "":
			fields := strings.Fields(line)
			r := importRule{line: line, from: fields[0]}
			dst := &r.deny
			for _, w := range fields[1:] {
				if w == "except" {
					dst = &r.except
					continue
				}
				*dst = append(*dst, w)
			}
			rules = append(rules, r)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rules) == 0 {
		t.Fatal("docs/ARCHITECTURE.md has no importrules block")
	}
	return rules
}

// TestImportRules: no package imports, directly or through others, what
// docs/ARCHITECTURE.md's import rules forbid it (store no net, net no web, board a leaf,
// nothing imports firmware, the codecs import nothing of this module).
func TestImportRules(t *testing.T) {
	root := moduleRoot(t)
	pkgs := modulePackages(t, root)
	for _, must := range []string{"firmware", "store", "store/blobs", "net/transfer", "net/pieces", "board", "web"} {
		if pkgs[must] == nil {
			t.Fatalf("package %s not found under %s: the walk is broken", must, root)
		}
	}
	for _, v := range violations(pkgs, readImportRules(t, root)) {
		t.Error(v)
	}
}

// violations lists the imports that break rules, as "dir imports dep (rule …)".
func violations(pkgs map[string]*modulePackage, rules []importRule) []string {
	var out []string
	for _, r := range rules {
		for dir := range pkgs {
			if !matches(r.from, dir) {
				continue
			}
			for _, d := range deps(pkgs, dir) {
				if d == dir || !slices.ContainsFunc(r.deny, func(p string) bool { return matches(p, d) }) ||
					slices.ContainsFunc(r.except, func(p string) bool { return matches(p, d) }) {
					continue
				}
				out = append(out, fmt.Sprintf("%s imports %s (rule %q)", dir, d, r.line))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestImportRulesCatch: the rules of docs/ARCHITECTURE.md catch a back-arrow through
// another package (store/blobs → net/pieces → net/rtc), which net/pieces' exception does
// not excuse, and a codec that grows an import.
func TestImportRulesCatch(t *testing.T) {
	pkgs := map[string]*modulePackage{
		"store/blobs": {dir: "store/blobs", imports: []string{"net/pieces"}},
		"net/pieces":  {dir: "net/pieces", imports: []string{"net/rtc"}},
		"net/rtc":     {dir: "net/rtc", imports: []string{"store/history"}},
		"firmware":    {dir: "firmware", imports: []string{"store/blobs", "web"}},
	}
	got := violations(pkgs, readImportRules(t, moduleRoot(t)))
	want := []string{
		"net/pieces imports net/rtc",
		"net/pieces imports store/history",
		"store/blobs imports net/rtc",
	}
	if len(got) != len(want) {
		t.Fatalf("violations:\n%s\nwant %q", strings.Join(got, "\n"), want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]+" ") {
			t.Errorf("violation %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// TestFunctionLength: no non-test function of the module is longer than maxFuncLines;
// a long one is cut into named steps.
func TestFunctionLength(t *testing.T) {
	root := moduleRoot(t)
	seen := 0
	walkGo(t, root, 0, func(rel string, fset *token.FileSet, f *ast.File) {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			seen++
			name := path.Dir(rel) + "." + fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				name = path.Dir(rel) + "." + recvType(fd.Recv.List[0].Type) + "." + fd.Name.Name
			}
			n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			if n > maxFuncLines && !longFuncExempt[name] {
				t.Errorf("%s:%d: %s is %d lines (at most %d)", rel, fset.Position(fd.Pos()).Line, name, n, maxFuncLines)
			}
		}
	})
	if seen < 100 {
		t.Fatalf("only %d functions found under %s: the walk is broken", seen, root)
	}
}

// recvType names a method's receiver type (T for T, *T, T[P] and *T[P]).
func recvType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return "?"
		}
	}
}
