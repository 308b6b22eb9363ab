package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
)

// Rules are the house rules Check enforces on one module.
type Rules struct {
	// Imports are rules on what packages import, read from go list.
	Imports []ImportRule
	// Unsafe lists the patterns of the packages that may import unsafe,
	// in their own files or their tests'; every other package of the
	// module may not.
	Unsafe []string
	// Hot is the rule on what the per-packet code may call.
	Hot HotPath
}

// ImportRule forbids the packages matching From to import any package
// matching Forbid: directly when Direct is set, else anywhere in what
// they link (go list -deps). Test files do not count.
type ImportRule struct {
	Name   string
	From   []string
	Forbid []string
	Direct bool
}

// HotPath forbids every function reachable from Roots to call or refer to
// a function of a package matching Forbid, save the calls Allow lists.
//
// Reachable means reachable in a call graph built from source: a call or
// reference to a function or concrete method is an edge to it; a call of
// an interface method is an edge to that method of every type declared at
// package level in the module's packages the roots link that implements
// the interface (class hierarchy analysis, as golang.org/x/tools/go/callgraph/cha
// does, over the module's own types); a function literal is part of the
// function it appears in. A call of a function value (a func-typed
// variable, field or parameter) cannot be followed and is itself a
// violation. A function of a package outside the module is a leaf: the
// path fails when its package matches Forbid or links one that does.
type HotPath struct {
	Name string
	// Roots are the entry points, as types.Func.FullName spells them:
	// "(*example.com/m/dataplane.Worker).ServeBatch".
	Roots  []string
	Forbid []string
	Allow  []Allowed
}

// Allowed lets Caller refer to Callee exactly Count times though Callee's
// package is forbidden on the hot path: a call that ends the path (an
// error that stops the worker), not one made per packet. A different
// count is a violation, so that a new call of the same function in the
// same caller is seen; an Allowed that no longer matches anything is one
// too, so that the list does not outlive its reasons.
type Allowed struct {
	Caller, Callee string // types.Func.FullName
	Count          int
	Why            string
}

// Violation is one broken rule.
type Violation struct {
	Rule   string
	Detail string
}

func (v Violation) String() string { return v.Rule + ": " + v.Detail }

// listed is the part of go list -json that Check reads.
type listed struct {
	ImportPath   string
	Dir          string
	Standard     bool
	GoFiles      []string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
	Export       string
	Module       *struct {
		Path string
		Main bool
	}
	Error      *struct{ Err string }
	DepsErrors []*struct{ Err string }
}

// goList runs go list -e -json with args in dir and decodes its packages,
// failing on any package go list could not load.
func goList(goTool, dir string, args ...string) ([]*listed, error) {
	cmd := exec.Command(goTool, append([]string{"list", "-e", "-json=ImportPath,Dir,Standard,GoFiles,Imports,TestImports,XTestImports,Deps,Export,Module,Error,DepsErrors"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr.Bytes())
	}
	var pkgs []*listed
	var errs []string
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		p := new(listed)
		if err := dec.Decode(p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list %s: decoding its output: %w", strings.Join(args, " "), err)
		}
		if p.Error != nil {
			errs = append(errs, p.ImportPath+": "+p.Error.Err)
		}
		for _, e := range p.DepsErrors {
			errs = append(errs, p.ImportPath+": "+e.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return nil, fmt.Errorf("go list %s in %s: %s", strings.Join(args, " "), dir, strings.Join(slices.Compact(errs), "\n"))
	}
	return pkgs, nil
}

// match reports whether path matches pattern: "a/b" matches a/b alone,
// "a/b/..." matches a/b and every package below it.
func match(pattern, path string) bool {
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == p || strings.HasPrefix(path, p+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, path) })
}

// Result is what Check found.
type Result struct {
	// Violations are the broken rules, sorted.
	Violations []Violation
	// Hot are the functions of the module reachable from the hot path's
	// roots, by full name, sorted: what the hot path rule looked into.
	Hot []string
}

// Check applies rules to the module in dir with the go command goTool. An
// error says the module could not be listed or type-checked, which is no
// verdict either way.
func Check(goTool, dir string, rules Rules) (*Result, error) {
	all, err := goList(goTool, dir, "-deps", "./...")
	if err != nil {
		return nil, err
	}
	byPath := make(map[string]*listed, len(all))
	for _, p := range all {
		byPath[p.ImportPath] = p
	}
	var vs []Violation
	for _, r := range rules.Imports {
		vs = append(vs, checkImports(r, all, byPath)...)
	}
	vs = append(vs, checkUnsafe(rules.Unsafe, all)...)
	hot, reached, err := checkHot(goTool, dir, rules.Hot)
	if err != nil {
		return nil, err
	}
	vs = append(vs, hot...)
	sort.Slice(vs, func(i, j int) bool { return vs[i].String() < vs[j].String() })
	return &Result{Violations: vs, Hot: reached}, nil
}

// inModule reports whether p is one of the main module's own packages,
// not the standard library's or a dependency's.
func inModule(p *listed) bool { return p.Module != nil && p.Module.Main }

// checkImports applies one ImportRule, naming for each forbidden package
// linked the chain of imports that brings it in.
func checkImports(r ImportRule, all []*listed, byPath map[string]*listed) []Violation {
	var vs []Violation
	for _, p := range all {
		if !matchAny(r.From, p.ImportPath) {
			continue
		}
		deps := p.Imports
		if !r.Direct {
			deps = p.Deps
		}
		for _, d := range deps {
			if !matchAny(r.Forbid, d) {
				continue
			}
			// A forbidden package that comes in through another (the
			// packages of cilium/ebpf through nic) is that one's
			// violation, not one of its own.
			chain := importChain(byPath, p.ImportPath, d)
			if slices.ContainsFunc(chain[1:len(chain)-1], func(q string) bool { return matchAny(r.Forbid, q) }) {
				continue
			}
			vs = append(vs, Violation{r.Name, strings.Join(chain, " -> ")})
		}
	}
	return vs
}

// importChain is a shortest chain of imports from one package to another.
func importChain(byPath map[string]*listed, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var chain []string
			for p := to; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		if p := byPath[cur]; p != nil {
			for _, next := range p.Imports {
				if _, seen := prev[next]; !seen {
					prev[next] = cur
					queue = append(queue, next)
				}
			}
		}
	}
	return []string{from, "...", to}
}

// checkUnsafe finds the module's packages outside allowed that import
// unsafe, in their own files or their tests'.
func checkUnsafe(allowed []string, all []*listed) []Violation {
	var vs []Violation
	for _, p := range all {
		if !inModule(p) || matchAny(allowed, p.ImportPath) {
			continue
		}
		for _, files := range []struct {
			what    string
			imports []string
		}{{"", p.Imports}, {" (in its tests)", p.TestImports}, {" (in its external tests)", p.XTestImports}} {
			if slices.Contains(files.imports, "unsafe") {
				vs = append(vs, Violation{"unsafe only in nic", p.ImportPath + files.what + " imports unsafe"})
			}
		}
	}
	return vs
}

// program is the module's packages that the hot path's roots link,
// type-checked from source, with the declaration of every function.
type program struct {
	dir    string // the module's root, to which positions are given
	fset   *token.FileSet
	info   map[*types.Package]*types.Info
	decls  map[*types.Func]*ast.FuncDecl
	listed map[string]*listed // every package linked, by path
	types  []types.Type       // the module's named types and pointers to them, for interface calls
}

// load type-checks the module's packages that the packages of roots link,
// from source, importing everything else from the export data go list
// -export gives.
func load(goTool, dir string, rootPkgs []string) (*program, error) {
	list, err := goList(goTool, dir, append([]string{"-deps", "-export"}, rootPkgs...)...)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	prog := &program{
		dir:    abs,
		fset:   token.NewFileSet(),
		info:   map[*types.Package]*types.Info{},
		decls:  map[*types.Func]*ast.FuncDecl{},
		listed: map[string]*listed{},
	}
	for _, p := range list {
		prog.listed[p.ImportPath] = p
	}
	exports := importer.ForCompiler(prog.fset, "gc", func(path string) (io.ReadCloser, error) {
		p := prog.listed[path]
		if p == nil || p.Export == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(p.Export)
	})
	fromSource := map[string]*types.Package{}
	imp := importerFunc(func(path string) (*types.Package, error) {
		if path == "unsafe" {
			return types.Unsafe, nil
		}
		if p := fromSource[path]; p != nil {
			return p, nil
		}
		return exports.Import(path)
	})
	// go list -deps lists a package after everything it imports, so each
	// of the module's packages is checked after those it needs.
	for _, p := range list {
		if !inModule(p) {
			continue
		}
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(prog.fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
		}
		info := &types.Info{
			Defs:       map[*ast.Ident]types.Object{},
			Uses:       map[*ast.Ident]types.Object{},
			Selections: map[*ast.SelectorExpr]*types.Selection{},
			Types:      map[ast.Expr]types.TypeAndValue{},
		}
		var typeErrs []error
		conf := types.Config{
			Importer: imp,
			Sizes:    types.SizesFor("gc", runtime.GOARCH),
			Error:    func(err error) { typeErrs = append(typeErrs, err) },
		}
		pkg, _ := conf.Check(p.ImportPath, prog.fset, files, info)
		if len(typeErrs) > 0 {
			return nil, fmt.Errorf("type-checking %s: %w", p.ImportPath, errors.Join(typeErrs...))
		}
		fromSource[p.ImportPath] = pkg
		prog.info[pkg] = info
		for _, f := range files {
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
					prog.decls[info.Defs[fd.Name].(*types.Func)] = fd
				}
			}
		}
		scope := pkg.Scope()
		for _, name := range scope.Names() {
			tn, ok := scope.Lookup(name).(*types.TypeName)
			if !ok || tn.IsAlias() {
				continue
			}
			if named, ok := tn.Type().(*types.Named); ok && named.TypeParams().Len() == 0 && !types.IsInterface(named) {
				prog.types = append(prog.types, named, types.NewPointer(named))
			}
		}
	}
	return prog, nil
}

// where is pos as file:line:column, the file relative to the module's root.
func (prog *program) where(pos token.Pos) string {
	p := prog.fset.Position(pos)
	if rel, err := filepath.Rel(prog.dir, p.Filename); err == nil {
		p.Filename = filepath.ToSlash(rel)
	}
	return p.String()
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// implementations are the methods that a call of the interface method m
// may run: m of every module type that implements m's interface.
func (prog *program) implementations(m *types.Func) []*types.Func {
	iface, ok := m.Signature().Recv().Type().Underlying().(*types.Interface)
	if !ok {
		return nil
	}
	var fns []*types.Func
	for _, t := range prog.types {
		if !types.Implements(t, iface) {
			continue
		}
		// When the value type implements the interface its method is
		// listed already; the pointer's would be the same method again.
		if p, ok := t.(*types.Pointer); ok && types.Implements(p.Elem(), iface) {
			continue
		}
		if sel := types.NewMethodSet(t).Lookup(m.Pkg(), m.Name()); sel != nil {
			fns = append(fns, sel.Obj().(*types.Func).Origin())
		}
	}
	return fns
}

// edge is one reference from a function's body: to a function, or to an
// unresolvable function value (fn nil) at pos.
type edge struct {
	fn  *types.Func
	pos token.Pos
}

// edges lists what fn's body refers to, in source order. An interface
// method's implementations each appear once per reference.
func (prog *program) edges(fn *types.Func) []edge {
	fd := prog.decls[fn]
	if fd == nil {
		return nil
	}
	info := prog.info[fn.Pkg()]
	closures := localClosures(info, fd.Body)
	var es []edge
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Ident:
			f, ok := info.Uses[n].(*types.Func)
			if !ok {
				return true
			}
			f = f.Origin()
			if recv := f.Signature().Recv(); recv != nil && types.IsInterface(recv.Type()) {
				for _, impl := range prog.implementations(f) {
					es = append(es, edge{impl, n.Pos()})
				}
				return true
			}
			es = append(es, edge{f, n.Pos()})
		case *ast.CallExpr:
			if id, ok := ast.Unparen(n.Fun).(*ast.Ident); ok && closures[info.Uses[id]] {
				return true
			}
			if prog.dynamic(info, n.Fun) {
				es = append(es, edge{nil, n.Pos()})
			}
		}
		return true
	})
	return es
}

// localClosures are the local variables of body that are only ever
// assigned function literals of body: calling one runs a literal that
// edges already walks as part of the function.
func localClosures(info *types.Info, body *ast.BlockStmt) map[types.Object]bool {
	closures := map[types.Object]bool{}
	assign := func(lhs ast.Expr, rhs ast.Expr) {
		id, ok := lhs.(*ast.Ident)
		if !ok {
			return
		}
		obj := info.Defs[id]
		if obj == nil {
			obj = info.Uses[id]
		}
		if obj == nil {
			return
		}
		_, lit := ast.Unparen(rhs).(*ast.FuncLit)
		if v, seen := closures[obj]; !seen || v {
			closures[obj] = lit
		}
	}
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Lhs) == len(n.Rhs) {
				for i := range n.Lhs {
					assign(n.Lhs[i], n.Rhs[i])
				}
			} else {
				for _, l := range n.Lhs {
					assign(l, n.Rhs[0]) // v, ok := f(): not a literal
				}
			}
		case *ast.ValueSpec:
			for i, name := range n.Names {
				if i < len(n.Values) {
					assign(name, n.Values[i])
				} else {
					assign(name, name) // declared without a value: nil
				}
			}
		}
		return true
	})
	return closures
}

// dynamic reports whether a call of fun calls a function value the graph
// cannot follow: neither a named function or method, nor a builtin, nor a
// conversion, nor a function literal called where it stands.
func (prog *program) dynamic(info *types.Info, fun ast.Expr) bool {
	fun = ast.Unparen(fun)
	if tv, ok := info.Types[fun]; ok && (tv.IsType() || tv.IsBuiltin()) {
		return false
	}
	switch f := fun.(type) {
	case *ast.FuncLit:
		return false
	case *ast.Ident:
		_, ok := info.Uses[f].(*types.Func)
		return !ok
	case *ast.SelectorExpr:
		_, ok := info.Uses[f.Sel].(*types.Func)
		return !ok
	case *ast.IndexExpr: // an explicitly instantiated generic function
		return prog.dynamic(info, f.X)
	case *ast.IndexListExpr:
		return prog.dynamic(info, f.X)
	}
	return true
}

// short is a function's full name without the module's path, for messages.
func short(mod string, fn *types.Func) string {
	if fn == nil {
		return "a function value"
	}
	return strings.ReplaceAll(fn.FullName(), mod+"/", "")
}

// checkHot walks the call graph from h.Roots, returning the violations and
// the module's functions it reached.
func checkHot(goTool, dir string, h HotPath) ([]Violation, []string, error) {
	if len(h.Roots) == 0 {
		return nil, nil, nil
	}
	rootPkgs, err := rootPackages(h.Roots)
	if err != nil {
		return nil, nil, err
	}
	prog, err := load(goTool, dir, rootPkgs)
	if err != nil {
		return nil, nil, err
	}
	mod := ""
	if p := prog.listed[rootPkgs[0]]; p != nil && p.Module != nil {
		mod = p.Module.Path
	}
	w := hotWalk{prog: prog, h: h, mod: mod, parent: map[*types.Func]*types.Func{},
		forbidden: map[hotCall]int{}, forbiddenAt: map[hotCall]string{}}
	w.walk()
	w.checkAllowed()
	var reached []string
	for fn := range w.parent {
		reached = append(reached, fn.FullName())
	}
	slices.Sort(reached)
	return w.vs, reached, nil
}

// rootPackages returns the packages of the hot path's roots, each named
// "(*a/b.T).M" or "a/b.F": the package path ends at the last dot after the
// last slash.
func rootPackages(roots []string) ([]string, error) {
	var pkgs []string
	for _, r := range roots {
		name := strings.TrimPrefix(r, "(*")
		name = strings.TrimPrefix(name, "(")
		slash := strings.LastIndex(name, "/")
		dot := strings.Index(name[slash+1:], ".")
		if slash < 0 || dot < 0 {
			return nil, fmt.Errorf("hot path root %q is not a full function name", r)
		}
		if pkg := name[:slash+1+dot]; !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, pkg)
		}
	}
	return pkgs, nil
}

// hotCall is a reference from a function of the hot path to a forbidden
// one, by their full names.
type hotCall struct{ caller, callee string }

// hotWalk is the breadth-first walk of a hot path's call graph.
type hotWalk struct {
	prog *program
	h    HotPath
	mod  string
	// parent is the function through which each reached function was
	// first reached (nil for a root): the walk's tree, for the paths it
	// reports.
	parent      map[*types.Func]*types.Func
	forbidden   map[hotCall]int    // references to forbidden functions
	forbiddenAt map[hotCall]string // the path to the first such reference
	vs          []Violation
}

// path is the chain of calls from a root to fn.
func (w *hotWalk) path(fn *types.Func) string {
	var names []string
	for f := fn; f != nil; f = w.parent[f] {
		names = append(names, short(w.mod, f))
	}
	slices.Reverse(names)
	return strings.Join(names, " -> ")
}

// walk follows every call from the roots within the module, counting the
// references to forbidden packages' functions and reporting the calls it
// cannot follow and the outside functions whose packages link a forbidden
// one.
func (w *hotWalk) walk() {
	var queue []*types.Func
	byName := map[string]*types.Func{}
	for fn := range w.prog.decls {
		byName[fn.FullName()] = fn
	}
	for _, r := range w.h.Roots {
		fn := byName[r]
		if fn == nil {
			w.vs = append(w.vs, Violation{w.h.Name, "root " + r + " not found: the rule checks nothing there; name the function that replaced it"})
			continue
		}
		if _, seen := w.parent[fn]; !seen {
			w.parent[fn] = nil
			queue = append(queue, fn)
		}
	}
	for len(queue) > 0 {
		fn := queue[0]
		queue = queue[1:]
		for _, e := range w.prog.edges(fn) {
			if next := w.follow(fn, e); next != nil {
				if _, seen := w.parent[next]; !seen {
					w.parent[next] = fn
					queue = append(queue, next)
				}
			}
		}
	}
}

// follow judges the call e from fn, and returns its callee when the walk
// goes on into it (a function of the module).
func (w *hotWalk) follow(fn *types.Func, e edge) *types.Func {
	if e.fn == nil {
		w.vs = append(w.vs, Violation{w.h.Name, w.path(fn) + " calls a function value at " + w.prog.where(e.pos) + ", which the check cannot follow"})
		return nil
	}
	pkg := e.fn.Pkg()
	if pkg == nil { // a universe object; edges expands error.Error
		return nil
	}
	if matchAny(w.h.Forbid, pkg.Path()) {
		c := hotCall{fn.FullName(), e.fn.FullName()}
		if w.forbidden[c] == 0 {
			w.forbiddenAt[c] = w.path(fn) + " -> " + short(w.mod, e.fn) + " (" + w.prog.where(e.pos) + ")"
		}
		w.forbidden[c]++
		return nil
	}
	if w.prog.decls[e.fn] != nil {
		return e.fn
	}
	// Outside the module: a leaf, which must not link a forbidden package,
	// since what it calls is not followed.
	if l := w.prog.listed[pkg.Path()]; l != nil {
		for _, d := range l.Deps {
			if matchAny(w.h.Forbid, d) {
				w.vs = append(w.vs, Violation{w.h.Name, w.path(fn) + " -> " + short(w.mod, e.fn) + ", whose package links " + d})
				break
			}
		}
	}
	return nil
}

// checkAllowed reports every forbidden reference the rule does not allow,
// or allows with another count, and every allowed one that no longer
// happens.
func (w *hotWalk) checkAllowed() {
	used := make([]bool, len(w.h.Allow))
	for c, n := range w.forbidden {
		i := slices.IndexFunc(w.h.Allow, func(a Allowed) bool { return a.Caller == c.caller && a.Callee == c.callee })
		switch {
		case i < 0:
			w.vs = append(w.vs, Violation{w.h.Name, w.forbiddenAt[c]})
		case w.h.Allow[i].Count != n:
			used[i] = true
			w.vs = append(w.vs, Violation{w.h.Name, fmt.Sprintf("%s: %d references, %d allowed (%s)", w.forbiddenAt[c], n, w.h.Allow[i].Count, w.h.Allow[i].Why)})
		default:
			used[i] = true
		}
	}
	for i, a := range w.h.Allow {
		if !used[i] {
			w.vs = append(w.vs, Violation{w.h.Name, "allowed call " + a.Caller + " -> " + a.Callee + " no longer happens: remove it from the list"})
		}
	}
}
