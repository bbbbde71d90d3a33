# `make run`: start the server on the embedded defaults. `make test`: the whole test suite.
# Both create .venv and install what they need first. Extra arguments: ARGS="...".

.PHONY: run test

run:
	scripts/run.sh $(ARGS)

test:
	scripts/test.sh $(ARGS)
