//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/calyptia/core-management-plane/internal/fluentbittest"
	"github.com/calyptia/core-management-plane/internal/testbin"
	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
	"github.com/calyptia/core-management-plane/pkg/generated/clientset/versioned"
	"github.com/calyptia/core-management-plane/test/e2e/framework"
)

// chromium is Debian's chromium (make chromium, or $CHROMIUM).
var chromium = testbin.Program{Name: "chromium", Env: "CHROMIUM", Make: "chromium"}

// buildCore builds cmd/core with the UI's assets, which `make ui` builds into web/dist/ui.
func buildCore(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(repoRoot, "web", "dist", "ui", "index.html")); err != nil {
		msg := "the UI is not built (web/dist/ui): run `make ui`"
		if strings.EqualFold(os.Getenv("CI"), "true") {
			t.Fatal(msg + " (required with CI=true)")
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := framework.BuildCommand(ctx, repoRoot, filepath.Join(cluster.Dir, "bin"), "core")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// browser starts a headless chromium with a fresh profile and nothing that reaches out to the
// network on its own (there is none here).
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium.Path(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)
	bctx, cancel2 := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancel2)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// shots saves screenshots under bin/e2e-artifacts/ui, to be looked at.
type shots struct {
	t   *testing.T
	dir string
}

func (s shots) take(ctx context.Context, name string) {
	s.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(s.dir, name+".png"), png, 0o644); err != nil {
		s.t.Errorf("saving screenshot %s: %v", name, err)
	}
}

// run runs browser actions with a bound, failing the test on error.
func runB(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(cctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(cctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// js runs JavaScript for its effect; expr must not evaluate to undefined.
func js(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](expr)(ctx, tg)
		return err
	})
}

// waitJS polls a JavaScript condition in the page until it is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for {
			ok, err := chromedp.Evaluate[bool](expr)(ctx, tg)
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w", expr, ctx.Err())
			case <-time.After(250 * time.Millisecond):
			}
		}
	})
}

// textOf is the text content of the first element matching a CSS selector.
func textOf(sel string) string {
	return fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? '')`, sel)
}

// unlabelled lists form controls a screen reader could not name.
const unlabelled = `[...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(el => !(el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent.trim())))
  .map(el => el.outerHTML.slice(0, 120))`

func checkLabels(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	bad := eval[[]string](t, ctx, unlabelled)
	if len(bad) > 0 {
		t.Errorf("%s: controls without a label: %v", page, bad)
	}
}

func login(t *testing.T, ctx context.Context, url, token string) {
	t.Helper()
	runB(t, ctx, "logging in",
		chromedp.Navigate(url+"/#/pipelines"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SetValue(chromedp.CSS(`#token`), token),
		// SetValue sets the DOM value; the input event makes Preact see it.
		js(`document.getElementById('token').dispatchEvent(new Event('input', {bubbles: true}))`),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=username]`)),
	)
}

func setNamespace(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	// The page may re-render the field (its namespace list arriving) while keys are typed:
	// type again until the field holds the namespace when Enter is pressed.
	for try := 0; ; try++ {
		runB(t, ctx, "choosing the namespace",
			js(`document.getElementById('namespace').select(); true`),
			chromedp.SendKeys(chromedp.CSS(`#namespace`), ns+kb.Enter),
		)
		time.Sleep(300 * time.Millisecond)
		if eval[bool](t, ctx, `localStorage.getItem('core.namespace') === `+jsonString(ns)+` && document.getElementById('namespace').value === `+jsonString(ns)) {
			return
		}
		if try == 5 {
			t.Fatalf("the namespace field does not take %q", ns)
		}
	}
}

// typeConfig replaces the editor's text as typing would, so the dry run follows.
func typeConfig(t *testing.T, ctx context.Context, config string) {
	t.Helper()
	runB(t, ctx, "typing the config", js(fmt.Sprintf(`(() => {
		const el = document.getElementById('config');
		el.value = %s;
		el.dispatchEvent(new Event('input', {bubbles: true}));
		return true })()`, jsonString(config))))
}

// TestUI drives the web UI in a real browser against the real plane: cloud-api behind
// kube-apiserver, core, and a host-mode agent running the pipelines with the real Fluent Bit.
func TestUI(t *testing.T) {
	fluentBit := fluentbittest.Binary(t)
	chromium.Path(t)
	coreBin := buildCore(t)
	primaryCloudAPI(t)
	operator := coreOperator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const ns, instance = "e2e-ui", "edge-ui"
	mustRun(t, admin, "create", "namespace", ns)
	cs, err := versioned.NewForConfig(cluster.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(cluster.Dir, "ui-host-state")
	t.Cleanup(func() { framework.StopHostPipelines(stateDir) })
	mustRunStdin(t, admin, fmt.Sprintf(`
apiVersion: core.calyptia.com/v1
kind: CoreInstance
metadata: {name: %s}
spec: {mode: External, environment: staging, tags: [edge, ui]}
---
apiVersion: core.calyptia.com/v1
kind: PipelineSecret
metadata: {name: ui-secret}
data: {token: %s}
`, instance, b64("s3cr3t-value")), "apply", "-n", ns, "-f", "-")
	agent, err := cluster.StartAgent(ctx, operator, framework.AgentOptions{
		Namespace: ns, CoreInstance: instance,
		Args: []string{"--fluent-bit=" + fluentBit, "--state-dir=" + stateDir, "--advertise-address=127.0.0.1",
			"--heartbeat-interval=5s", "--metrics-interval=2s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Stop(15 * time.Second)

	core, err := cluster.StartCore(ctx, coreBin, framework.CoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer core.Stop(15 * time.Second)
	viewerToken, err := cluster.ServiceAccountUser(ctx, ns, "ui-viewer", "view", false)
	if err != nil {
		t.Fatal(err)
	}
	editorToken, err := cluster.ServiceAccountUser(ctx, ns, "ui-editor", "edit", false)
	if err != nil {
		t.Fatal(err)
	}

	artifacts := filepath.Join(repoRoot, "bin", "e2e-artifacts", "ui")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := shots{t: t, dir: artifacts}
	httpPort := freeTCPPort(t)
	good := fmt.Sprintf(`[SERVICE]
    http_server on
    http_listen 127.0.0.1
    http_port   %d

[INPUT]
    name  dummy
    tag   ui
    rate  20

[OUTPUT]
    name  null
    match *
`, httpPort)
	typo := strings.Replace(good, "name  dummy", "name  dumy", 1)
	typoLine := 1 + strings.Count(typo[:strings.Index(typo, "dumy")], "\n")

	t.Run("login page", func(t *testing.T) {
		bctx := browser(t, ctx)
		runB(t, bctx, "opening the UI", chromedp.Navigate(core.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#token`)))
		shot.take(bctx, "01-login")
		checkLabels(t, bctx, "login")
		label := eval[string](t, bctx, textOf(`label[for=token]`))
		if label != "Bearer token" {
			t.Errorf("token label %q", label)
		}
		// A wrong token is refused with a message, and no session cookie.
		runB(t, bctx, "logging in with a bad token",
			chromedp.SendKeys(chromedp.CSS(`#token`), "not-a-token"),
			chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
			waitJS(textOf(`[role=alert]`)+`.includes('did not accept')`),
		)
	})

	t.Run("view user cannot edit", func(t *testing.T) {
		p := &corev1.Pipeline{
			ObjectMeta: metav1.ObjectMeta{Name: "existing"},
			Spec:       corev1.PipelineSpec{CoreInstance: instance, Config: "[INPUT]\n    name dummy\n\n[OUTPUT]\n    name null\n    match *\n"},
		}
		if _, err := cs.CoreV1().Pipelines(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		bctx := browser(t, ctx)
		login(t, bctx, core.URL, viewerToken)
		setNamespace(t, bctx, ns)
		runB(t, bctx, "listing pipelines", waitJS(textOf(`[data-testid=pipelines] tbody`)+`.includes('existing')`))
		if eval[bool](t, bctx, `!!document.querySelector('a[href="#/pipelines/new"]')`) {
			t.Error("a view user is offered New pipeline")
		}
		shot.take(bctx, "02-viewer-pipelines")
		checkLabels(t, bctx, "pipelines (viewer)")
		runB(t, bctx, "opening the pipeline",
			chromedp.Click(chromedp.CSS(`[data-testid=pipelines] a`)),
			waitJS(textOf(`.notice-readonly`)+`.includes('Read only')`),
			waitJS(`document.querySelector('#replicas')?.disabled === true`),
		)
		runB(t, bctx, "opening the config", chromedp.Navigate(core.URL+"/#/pipelines/"+ns+"/existing/config"), waitJS(`document.getElementById('config')?.readOnly === true`))
		shot.take(bctx, "03-viewer-config-readonly")
		// RBAC's refusal reads as "not allowed", not as an error page.
		runB(t, bctx, "opening secrets", chromedp.Navigate(core.URL+"/#/secrets"), waitJS(textOf(`.notice-forbidden`)+`.includes('Not allowed')`))
		shot.take(bctx, "04-viewer-secrets-not-allowed")
		mustRun(t, admin, "delete", "pipeline", "existing", "-n", ns, "--wait=false")
	})

	t.Run("edit user", func(t *testing.T) {
		bctx := browser(t, ctx)
		login(t, bctx, core.URL, editorToken)
		setNamespace(t, bctx, ns)
		runB(t, bctx, "opening New pipeline",
			chromedp.WaitVisible(chromedp.CSS(`a[href="#/pipelines/new"]`)),
			chromedp.Click(chromedp.CSS(`a[href="#/pipelines/new"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#name`)),
			chromedp.SendKeys(chromedp.CSS(`#name`), "ui-dummy"),
			waitJS(`document.querySelector('#core-instance')?.value === '`+instance+`'`),
		)
		checkLabels(t, bctx, "new pipeline")

		// A typo: the API's dry run names the line, and the editor marks it.
		typeConfig(t, bctx, typo)
		lineSel := fmt.Sprintf(`.gutter .ln.error[data-line="%d"]`, typoLine)
		runB(t, bctx, "waiting for the error at its line",
			waitJS(`!!document.querySelector('`+lineSel+`')`),
			waitJS(textOf(fmt.Sprintf(`.problem[data-line="%d"]`, typoLine))+`.includes('dumy')`),
			waitJS(`document.querySelector('form button[type=submit]').disabled`),
		)
		shot.take(bctx, "05-new-pipeline-typo")
		marked := eval[int](t, bctx, `document.querySelectorAll('.gutter .ln.error').length`)
		if marked != 1 {
			t.Errorf("%d lines marked, want 1 (line %d)", marked, typoLine)
		}

		typeConfig(t, bctx, good)
		runB(t, bctx, "creating the pipeline",
			waitJS(`!!document.querySelector('.problems .valid')`),
			waitJS(`!document.querySelector('.gutter .ln.error')`),
			chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
			waitJS(`location.hash === '#/pipelines/`+ns+`/ui-dummy'`),
			waitJS(textOf(`.page-head .badge`)+` === 'Started'`),
		)
		shot.take(bctx, "06-pipeline-started")
		checkLabels(t, bctx, "pipeline overview")
		got, err := cs.CoreV1().Pipelines(ns).Get(ctx, "ui-dummy", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Config != good || got.Spec.CoreInstance != instance {
			t.Errorf("created spec %+v", got.Spec)
		}

		// Keyboard: the tabs follow the arrow keys.
		runB(t, bctx, "moving between tabs with the keyboard",
			chromedp.Focus(chromedp.CSS(`#tab-overview`)),
			chromedp.KeyEvent(kb.ArrowRight),
			waitJS(`document.activeElement?.id === 'tab-config' && document.activeElement.getAttribute('aria-selected') === 'true'`),
			waitJS(`!!document.getElementById('config')`),
		)

		// Edit: a typo shows at its line, the fix saves.
		typeConfig(t, bctx, typo)
		runB(t, bctx, "waiting for the edit's error", waitJS(`!!document.querySelector('`+lineSel+`')`))
		shot.take(bctx, "07-edit-typo")
		edited := strings.Replace(good, "tag   ui", "tag   ui-edited", 1)
		typeConfig(t, bctx, edited)
		runB(t, bctx, "saving the edit",
			waitJS(`!!document.querySelector('.problems .valid')`),
			chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
			waitJS(textOf(`p.ok[role=status]`)+`.includes('Saved')`),
		)
		got, err = cs.CoreV1().Pipelines(ns).Get(ctx, "ui-dummy", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Config != edited {
			t.Errorf("saved config:\n%s", got.Spec.Config)
		}

		// Scale.
		runB(t, bctx, "scaling",
			chromedp.Navigate(core.URL+"/#/pipelines/"+ns+"/ui-dummy"),
			chromedp.WaitVisible(chromedp.CSS(`#replicas`)),
			js(`document.getElementById('replicas').value = ''; true`),
			chromedp.SendKeys(chromedp.CSS(`#replicas`), "3"),
			chromedp.Click(chromedp.CSS(`form.scale button[type=submit]`)),
			waitJS(textOf(`form.scale p.ok`)+`.includes('Scaled to 3')`),
			waitJS(textOf(`[data-testid=replicas]`)+`.includes('of 3')`),
		)
		got, err = cs.CoreV1().Pipelines(ns).Get(ctx, "ui-dummy", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Replicas == nil || *got.Spec.Replicas != 3 {
			t.Errorf("replicas %v after scaling to 3", got.Spec.Replicas)
		}

		// Vivo: the dummy input's records, the first as soon as there is one.
		runB(t, bctx, "reading Vivo",
			chromedp.Navigate(core.URL+"/#/pipelines/"+ns+"/ui-dummy/vivo"),
			waitJS(textOf(`[data-testid=vivo-records] tbody`)+`.includes('"message":"dummy"')`),
		)
		shot.take(bctx, "08-vivo")
		checkLabels(t, bctx, "vivo")
		rowsJS := `document.querySelectorAll('[data-testid=vivo-records] tbody tr').length`
		beforeSearch := eval[int](t, bctx, rowsJS)
		runB(t, bctx, "searching Vivo",
			chromedp.SendKeys(chromedp.CSS(`.vivo input[type=search]`), "no-such-text"),
			waitJS(rowsJS+` === 0`),
		)
		afterSearch := eval[int](t, bctx, rowsJS)
		if beforeSearch == 0 || afterSearch != 0 {
			t.Errorf("search: %d rows before, %d after searching for text no record has", beforeSearch, afterSearch)
		}
		// Pages over the window (the dummy input makes 20 records a second: more than a page),
		// pause and clear.
		runB(t, bctx, "paging, pausing and clearing Vivo",
			js(`(() => { const el = document.querySelector('.vivo input[type=search]'); el.select(); return true })()`),
			chromedp.SendKeys(chromedp.CSS(`.vivo input[type=search]`), kb.Backspace),
			waitJS(textOf(`.pager`)+`.includes('Page 1 of')`),
			chromedp.Click(chromedp.CSS(`.pager button:last-child`)),
			waitJS(textOf(`.pager`)+`.includes('Page 2 of')`),
			chromedp.Click(chromedp.CSS(`.vivo button[aria-pressed]`)),
			waitJS(textOf(`[data-testid=vivo-status]`)+`.startsWith('Paused')`),
			chromedp.Click(chromedp.CSS(`.vivo .toolbar button:not([aria-pressed])`)),
			waitJS(`document.querySelectorAll('[data-testid=vivo-records] tbody tr').length === 0`),
			chromedp.Click(chromedp.CSS(`.vivo button[aria-pressed]`)),
			waitJS(`document.querySelectorAll('[data-testid=vivo-records] tbody tr').length > 0`),
		)
		runB(t, bctx, "the metrics signal does not break the view",
			chromedp.SetValue(chromedp.CSS(`.vivo select`), "metrics"),
			js(`document.querySelector('.vivo select').dispatchEvent(new Event('change', {bubbles: true}))`),
			waitJS(textOf(`[data-testid=vivo-status]`)+`.includes('chunks')`),
		)

		// Metrics: the records chart has points once the agent has reported a scrape.
		runB(t, bctx, "reading metrics",
			chromedp.Navigate(core.URL+"/#/pipelines/"+ns+"/ui-dummy/metrics"),
			waitJS(`(() => { const s = document.querySelector('figure.chart svg'); if (s && Number(s.dataset.points) > 0) return true;
				// The panel reads again every 30 s; come back sooner while there is no data.
				if (!s) { location.hash = '#/pipelines/`+ns+`/ui-dummy/events'; setTimeout(() => location.hash = '#/pipelines/`+ns+`/ui-dummy/metrics', 300) } return false })()`),
		)
		points := eval[string](t, bctx, `document.querySelector('figure.chart svg').dataset.points`)
		if n, _ := strconv.Atoi(points); n < 1 {
			t.Errorf("records chart has %q points", points)
		}
		shot.take(bctx, "09-metrics")

		runB(t, bctx, "reading events",
			chromedp.Navigate(core.URL+"/#/pipelines/"+ns+"/ui-dummy/events"),
			waitJS(`document.querySelectorAll('[data-testid=events] tbody tr').length > 0`),
		)
		shot.take(bctx, "10-events")
		runB(t, bctx, "core instances",
			chromedp.Navigate(core.URL+"/#/instances"),
			waitJS(textOf(`[data-testid=coreinstances] tbody`)+`.includes('Running')`),
		)
		runB(t, bctx, "the core instance's metrics",
			chromedp.Click(chromedp.CSS(`[data-testid=coreinstances] button[aria-label^="Metrics"]`)),
			waitJS(`Number(document.querySelector('[data-testid=coreinstances] figure.chart svg')?.dataset.points ?? 0) > 0`),
		)
		shot.take(bctx, "11-core-instances")
		// A new core instance, then the environment filter.
		runB(t, bctx, "creating a core instance",
			chromedp.Click(chromedp.CSS(`.page-head button.primary`)),
			chromedp.WaitVisible(chromedp.CSS(`#ci-name`)),
			chromedp.SendKeys(chromedp.CSS(`#ci-name`), "ui-made"),
			chromedp.SendKeys(chromedp.CSS(`#ci-env`), "dev"),
			chromedp.SendKeys(chromedp.CSS(`#ci-tags`), "a, b"),
			chromedp.Click(chromedp.CSS(`form[aria-label="New core instance"] button[type=submit]`)),
			waitJS(textOf(`[data-testid=coreinstances] tbody`)+`.includes('ui-made')`),
			js(`(() => { const s = document.querySelector('.filters select'); s.value = 'dev'; s.dispatchEvent(new Event('change', {bubbles: true})); return true })()`),
			waitJS(`document.querySelectorAll('[data-testid=coreinstances] tbody tr').length === 1 && `+textOf(`[data-testid=coreinstances] tbody`)+`.includes('ui-made')`),
		)
		ci, err := cs.CoreV1().CoreInstances(ns).Get(ctx, "ui-made", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ci.Spec.Environment != "dev" || strings.Join(ci.Spec.Tags, ",") != "a,b" {
			t.Errorf("created core instance spec %+v", ci.Spec)
		}
		checkLabels(t, bctx, "core instances")
		runB(t, bctx, "secrets show keys, never values",
			chromedp.Navigate(core.URL+"/#/secrets"),
			waitJS(textOf(`[data-testid=secrets] tbody`)+`.includes('token')`),
		)
		page := eval[string](t, bctx, `document.documentElement.outerHTML`)
		if strings.Contains(page, "s3cr3t-value") || strings.Contains(page, b64("s3cr3t-value")) {
			t.Error("a secret's value is in the page")
		}
		// A new secret, its value typed once and never shown.
		runB(t, bctx, "creating a secret",
			chromedp.Click(chromedp.CSS(`.page-head button.primary`)),
			chromedp.WaitVisible(chromedp.CSS(`#new-secret-name`)),
			chromedp.SendKeys(chromedp.CSS(`#new-secret-name`), "ui-made"),
			chromedp.SendKeys(chromedp.CSS(`#new-secret-key-0`), "password"),
			chromedp.SendKeys(chromedp.CSS(`#new-secret-value-0`), "typed-in-the-ui"),
			chromedp.Click(chromedp.CSS(`form[aria-label="New secret"] button[type=submit]`)),
			waitJS(textOf(`[data-testid=secrets] tbody`)+`.includes('ui-made')`),
			waitJS(`!document.documentElement.outerHTML.includes('typed-in-the-ui')`),
		)
		made, err := cs.CoreV1().PipelineSecrets(ns).Get(ctx, "ui-made", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(made.Data["password"]) != "typed-in-the-ui" {
			t.Errorf("secret data %q", made.Data)
		}
		shot.take(bctx, "12-secrets")
		runB(t, bctx, "resource profiles",
			chromedp.Navigate(core.URL+"/#/profiles"),
			waitJS(textOf(`[data-testid=profiles] tbody`)+`.includes('best-effort-low-resource')`),
		)
		shot.take(bctx, "13-profiles")

		// Keyboard: from the top of the page, Tab reaches the skip link, then the navigation.
		runB(t, bctx, "tabbing from the top",
			chromedp.Navigate(core.URL+"/#/pipelines"),
			// A fresh page: focus starts at the top.
			chromedp.Reload(),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=username]`)),
			chromedp.KeyEvent(kb.Tab),
		)
		first := eval[string](t, bctx, `document.activeElement?.textContent ?? ''`)
		runB(t, bctx, "tabbing on", chromedp.KeyEvent(kb.Tab))
		second := eval[string](t, bctx, `document.activeElement?.textContent ?? ''`)
		if first != "Skip to content" || second != "Pipelines" {
			t.Errorf("Tab order starts %q, %q; want the skip link, then Pipelines", first, second)
		}

		// Delete, from the UI: the agent stops the process and the list loses it.
		runB(t, bctx, "deleting the pipeline",
			chromedp.Navigate(core.URL+"/#/pipelines/"+ns+"/ui-dummy"),
			chromedp.WaitVisible(chromedp.CSS(`.danger-zone button`)),
			js(`window.confirm = () => true; true`),
			chromedp.Click(chromedp.CSS(`.danger-zone button`)),
			waitJS(`location.hash === '#/pipelines'`),
		)
		waitUntil(ctx, t, "the pipeline to be gone", func(ctx context.Context) error {
			if _, err := cs.CoreV1().Pipelines(ns).Get(ctx, "ui-dummy", metav1.GetOptions{}); err == nil {
				return errors.New("still there")
			}
			return nil
		})
		runB(t, bctx, "the list loses it", waitJS(`!`+textOf(`main`)+`.includes('ui-dummy')`))
	})
}
