# The README's two commands: `make dev` runs the exchange on embedded stores, `make test` passes every test.
# Both install what they need first (scripts/bootstrap); Node 24 lands in .tools/ when the local node is too old.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/.tools/node/bin:$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: dev test check unit testenv testenv-down bench

dev:
	@scripts/bootstrap
	node cli/bourse.ts dev $(if $(BOURSE_CREDENTIALS_FILE),--credentials-file $(BOURSE_CREDENTIALS_FILE))

test:
	@scripts/bootstrap test
	@scripts/testenv up
	@$(MAKE) --no-print-directory check
	@eval "$$(scripts/testenv env)" && vitest run

# Typecheck and lint, without the servers.
check:
	tsc --noEmit
	biome check .

testenv:
	@scripts/testenv up && scripts/testenv env

testenv-down:
	@scripts/testenv down

# `make bench` runs every benchmark under bench/, `make bench B=name` one. operator-scale needs the local
# control plane: B=operator-scale starts it (building it first if needed); plain `make bench` starts it and
# includes operator-scale only when its binaries are already built (a cold build takes tens of minutes).
bench:
	@scripts/bootstrap test
	@scripts/testenv up
	@eval "$$(scripts/testenv env)" && \
	  if [ "$(B)" = operator-scale ] || { [ -z "$(B)" ] && scripts/cluster built; }; then \
	    scripts/cluster up >/dev/null && eval "$$(scripts/cluster env)" && export BOURSE_BENCH_CLUSTER=1; fi && \
	  node bench/run.ts $(B)

# A real Kubernetes control plane on 127.0.0.1 (etcd, kube-apiserver, controller-manager, scheduler, kwok's
# fake nodes), built from Go modules once and cached under ~/.cache/bourse; prints the kubeconfig path.
.PHONY: cluster cluster-down e2e
cluster:
	@scripts/cluster up

cluster-down:
	@scripts/cluster down

# The end-to-end suites under e2e/, against that cluster (started if needed), with the helm of `make chart`
# (e2e/helm.test.ts installs the chart). Not part of `make test`.
HELM := $(HOME)/.cache/bourse/helm-v3.21.4/helm
HELM_UNITTEST := $(HOME)/.cache/bourse/helm-unittest-v1.1.2/helm-unittest
e2e: $(HELM)
	@scripts/bootstrap
	@scripts/cluster up >/dev/null
	@eval "$$(scripts/cluster env)" && BOURSE_HELM=$(HELM) vitest run --config e2e/vitest.config.ts $(T)

# The Helm chart: lint, template and helm-unittest, with helm v3.21.4 (version stamped, Kubernetes 1.34) and
# helm-unittest (scripts/helm.d/unittest) built from Go modules into ~/.cache/bourse. Not part of `make test`.
.PHONY: chart
$(HELM):
	GOTOOLCHAIN=local GOBIN=$(dir $@) nice -n 19 go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v3.21.4 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=34 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=34" helm.sh/helm/v3/cmd/helm@v3.21.4
$(HELM_UNITTEST):
	cd scripts/helm.d/unittest && GOTOOLCHAIN=local GOBIN=$(dir $@) nice -n 19 go install -ldflags "-s -w" github.com/helm-unittest/helm-unittest/cmd/helm-unittest
chart: $(HELM) $(HELM_UNITTEST)
	$(HELM) lint --strict charts/bourse 2>&1 | grep -v 'found symbolic link'
	$(HELM) lint --strict charts/bourse -f charts/bourse/tests/full-values.yaml 2>&1 | grep -v 'found symbolic link'
	$(HELM) template bourse charts/bourse -f charts/bourse/tests/full-values.yaml 2>/dev/null >/dev/null
	$(HELM_UNITTEST) charts/bourse 2>&1 | grep -v 'found symbolic link'
