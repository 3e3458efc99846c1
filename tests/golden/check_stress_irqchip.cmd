check --summary traces/stress-pit-irqchip-real.zst traces/stress-pit-irqchip-l64.zst
