# step() is called from Python only; nothing is shared at C level. This file exists so every
# core module can be cimported alike and the layout stays uniform.
