"""Plain nn.Module image models (no Lightning in here), each mapping (B, C, H, W) to logits.

- ``mlp.MLPClassifier``: an MLP on flattened pixels.
- ``cnn.SmallCNN``: the small conv-ReLU-pool CNN of the classic MNIST tutorials.
- ``lenet.LeNet5``: LeNet-5 (LeCun et al., 1998).
- ``cifar_resnet.CIFARResNet``: ResNet-20/32/44/56/110 for CIFAR (He et al., 2016), optional
  stochastic depth.
- ``torchvision_resnet.TorchvisionResNet``: torchvision's ResNet-18/34/50 with a new head,
  optional pretrained weights, backbone freezing and parameter groups for fine-tuning.
"""
